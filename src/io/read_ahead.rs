//! A read-ahead thread for merges: run readers hand it empty pages, each with the block of a
//! spill file it is to hold; it reads them in the order asked (with direct I/O where the file
//! has it), checks each block, and hands it back to its reader, so that while the merge works
//! on one block of a run, the run's next blocks are being read into its other pages.
//!
//! The pages stay the readers' (they are only lent to the thread while being read), so the
//! memory is the same pages as without read-ahead: a reader with `k` pages reads up to `k - 1`
//! blocks ahead.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use super::block::BlockInfo;
use super::spill::SpillFile;
use crate::error::{Error, Result};
use crate::segment::Segment;

/// A page read for a reader, with the result of the read and of checking the block.
pub(crate) type Filled = (Segment, Result<BlockInfo>);

/// Consecutive blocks to read, one into each page.
pub(crate) struct Request {
    pub(crate) file: Arc<SpillFile>,
    pub(crate) offset: u64,
    pub(crate) pages: Vec<Segment>,
    pub(crate) reply: Sender<Filled>,
}

/// The thread that reads ahead for the readers of one merge. Dropping it waits for the thread,
/// which ends once every reader it served is gone (readers hold its request channel).
pub struct ReadAhead {
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead").finish_non_exhaustive()
    }
}

impl ReadAhead {
    /// Starts the thread.
    pub fn start() -> Result<Self> {
        let (tx, rx) = channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("memseg-read-ahead".into())
            .spawn(move || {
                for request in rx {
                    let Request {
                        file,
                        offset,
                        mut pages,
                        reply,
                    } = request;
                    // Checking the blocks here takes their checksums off the merge's thread.
                    let results = file.read_blocks(offset, &mut pages);
                    // Let go of the file first: once its reader has every page back, nothing
                    // may keep it from being removed.
                    drop(file);
                    for filled in pages.into_iter().zip(results) {
                        // A reader that is gone takes no reply: its pages are dropped.
                        let _ = reply.send(filled);
                    }
                }
            })
            .map_err(|e| Error::Io(format!("starting the read-ahead thread: {e}")))?;
        Ok(ReadAhead {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    /// The channel readers send their requests to.
    pub(crate) fn requests(&self) -> Sender<Request> {
        self.requests.clone().expect("open until dropped")
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A reader's side of the read-ahead: its pages out being read, and those given back.
pub(crate) struct Feed {
    requests: Sender<Request>,
    replies: Receiver<Filled>,
    reply_to: Sender<Filled>,
    /// Pages lent to the thread and not yet back.
    in_flight: usize,
    /// Pages given back, not yet lent again.
    pending: Vec<Segment>,
    /// How many pages given back make a request.
    batch: usize,
}

impl Feed {
    /// A feed through `read_ahead` that asks for blocks `batch` at a time.
    pub(crate) fn new(read_ahead: &ReadAhead, batch: usize) -> Self {
        let (reply_to, replies) = channel();
        Feed {
            requests: read_ahead.requests(),
            replies,
            reply_to,
            in_flight: 0,
            pending: Vec::new(),
            batch: batch.max(1),
        }
    }

    /// Takes back a page whose block has been used.
    pub(crate) fn give_back(&mut self, page: Segment) {
        self.pending.push(page);
    }

    /// Whether enough pages were given back for a request, or none is out.
    pub(crate) fn wants_request(&self) -> bool {
        self.pending.len() >= self.batch || self.in_flight == 0
    }

    /// Lends the pages given back, up to `blocks_left`, to read the consecutive blocks from
    /// `offset` of `file` into; returns how many.
    pub(crate) fn request(&mut self, file: &Arc<SpillFile>, offset: u64, blocks_left: u64) -> u64 {
        let n = (self.pending.len() as u64).min(blocks_left) as usize;
        if n == 0 {
            return 0;
        }
        let request = Request {
            file: Arc::clone(file),
            offset,
            pages: self.pending.split_off(self.pending.len() - n),
            reply: self.reply_to.clone(),
        };
        match self.requests.send(request) {
            Ok(()) => {
                self.in_flight += n;
                n as u64
            }
            // The thread is gone (it panicked): keep the pages; `next` reports it.
            Err(e) => {
                self.pending.extend(e.0.pages);
                0
            }
        }
    }

    /// The next page read, in the order they were asked for, with the read's result.
    pub(crate) fn next(&mut self) -> Result<Filled> {
        if self.in_flight == 0 {
            return Err(Error::Io("the read-ahead thread ended".into()));
        }
        let filled = self
            .replies
            .recv()
            .map_err(|_| Error::Io("the read-ahead thread ended".into()))?;
        self.in_flight -= 1;
        Ok(filled)
    }

    /// Waits for every page lent out and returns them all.
    pub(crate) fn into_pages(mut self) -> Vec<Segment> {
        while self.in_flight > 0 {
            match self.replies.recv() {
                Ok((page, _)) => self.pending.push(page),
                Err(_) => break,
            }
            self.in_flight -= 1;
        }
        self.pending
    }
}
