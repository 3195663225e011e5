//! Writing behind: a run writer that has more than one page hands each full block to a thread
//! that writes it to the spill file, and goes on filling the next page meanwhile, so that
//! filling blocks (gathering records from a sort buffer, or merging) and the disk's writes
//! overlap. The pages stay the writer's: they are lent to the thread while being written.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use super::spill::SpillFile;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// A thread that writes full pages to one spill file, in the order given.
pub(crate) struct WriteBehind {
    to_thread: Option<Sender<Segment>>,
    back: Receiver<(Segment, Result<()>)>,
    thread: Option<JoinHandle<SpillFile>>,
    /// Pages not lent to the thread.
    free: Vec<Segment>,
    in_flight: usize,
}

/// Most pages written with one system call.
const MAX_BATCH: usize = 8;

fn thread_gone() -> Error {
    Error::Io("the spill write thread ended early".into())
}

impl WriteBehind {
    /// Starts a thread that writes to `file`; `free` are the pages to fill meanwhile.
    pub(crate) fn start(file: SpillFile, free: Vec<Segment>) -> Result<Self> {
        let (to_thread, pages) = channel::<Segment>();
        let (done, back) = channel();
        let thread = std::thread::Builder::new()
            .name("memseg-write".into())
            .spawn(move || {
                let mut file = file;
                let mut failed: Option<Error> = None;
                while let Ok(page) = pages.recv() {
                    // The pages queued by now go out in one write: larger writes are faster.
                    let mut batch = vec![page];
                    while batch.len() < MAX_BATCH {
                        match pages.try_recv() {
                            Ok(page) => batch.push(page),
                            Err(_) => break,
                        }
                    }
                    // After a failed write the file is not written on: the run is lost.
                    let result = match &failed {
                        Some(e) => Err(e.clone()),
                        None => {
                            let slices: Vec<&[u8]> = batch.iter().map(Segment::as_slice).collect();
                            file.write_pages(&slices)
                        }
                    };
                    if let Err(e) = &result {
                        failed.get_or_insert_with(|| e.clone());
                    }
                    for page in batch {
                        if done.send((page, result.clone())).is_err() {
                            return file;
                        }
                    }
                }
                file
            })
            .map_err(|e| Error::Io(format!("starting the spill write thread: {e}")))?;
        Ok(WriteBehind {
            to_thread: Some(to_thread),
            back,
            thread: Some(thread),
            free,
            in_flight: 0,
        })
    }

    /// A page to fill: a free one, or the next the thread has written (whose write's error,
    /// if any, is returned instead, the page kept).
    pub(crate) fn free_page(&mut self) -> Result<Segment> {
        if let Some(page) = self.free.pop() {
            return Ok(page);
        }
        if self.in_flight == 0 {
            return Err(thread_gone());
        }
        let (page, result) = self.back.recv().map_err(|_| thread_gone())?;
        self.in_flight -= 1;
        match result {
            Ok(()) => Ok(page),
            Err(e) => {
                self.free.push(page);
                Err(e)
            }
        }
    }

    /// Hands a full page to the thread, to be written after those handed before.
    pub(crate) fn submit(&mut self, page: Segment) -> Result<()> {
        match self.to_thread.as_ref().map(|tx| tx.send(page)) {
            Some(Ok(())) => {
                self.in_flight += 1;
                Ok(())
            }
            Some(Err(e)) => {
                self.free.push(e.0);
                Err(thread_gone())
            }
            None => Err(thread_gone()),
        }
    }

    /// Waits for every write; returns the file (or the first write's error) and every page.
    pub(crate) fn finish(mut self) -> (Result<SpillFile>, Vec<Segment>) {
        self.to_thread = None;
        let mut first_error = None;
        while self.in_flight > 0 {
            match self.back.recv() {
                Ok((page, result)) => {
                    self.free.push(page);
                    if let Err(e) = result {
                        first_error.get_or_insert(e);
                    }
                }
                Err(_) => break,
            }
            self.in_flight -= 1;
        }
        let file = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(file)) => Ok(file),
            _ => Err(thread_gone()),
        };
        let pages = std::mem::take(&mut self.free);
        match first_error {
            Some(e) => (Err(e), pages),
            None => (file, pages),
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.to_thread = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
