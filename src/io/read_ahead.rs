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

/// One page to read.
pub(crate) struct Request {
    pub(crate) file: Arc<SpillFile>,
    pub(crate) offset: u64,
    pub(crate) page: Segment,
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
                        mut page,
                        reply,
                    } = request;
                    // Checking the block here takes its checksum off the merge's thread.
                    let result = file.read_block(offset, page.as_mut_slice(), true);
                    // Let go of the file first: once its reader has every page back, nothing
                    // may keep it from being removed.
                    drop(file);
                    // A reader that is gone takes no reply: the page is dropped with it.
                    let _ = reply.send((page, result));
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

/// A reader's side of the read-ahead: its pages out being read, and those to come back.
pub(crate) struct Feed {
    requests: Sender<Request>,
    replies: Receiver<Filled>,
    reply_to: Sender<Filled>,
    /// Pages lent to the thread and not yet back.
    in_flight: usize,
    /// Pages with nothing left to read into.
    spare: Vec<Segment>,
}

impl Feed {
    /// A feed through `read_ahead`.
    pub(crate) fn new(read_ahead: &ReadAhead) -> Self {
        let (reply_to, replies) = channel();
        Feed {
            requests: read_ahead.requests(),
            replies,
            reply_to,
            in_flight: 0,
            spare: Vec::new(),
        }
    }

    /// Lends `page` to the thread to read the page at `offset` of `file` into.
    pub(crate) fn request(&mut self, file: &Arc<SpillFile>, offset: u64, page: Segment) {
        let request = Request {
            file: Arc::clone(file),
            offset,
            page,
            reply: self.reply_to.clone(),
        };
        match self.requests.send(request) {
            Ok(()) => self.in_flight += 1,
            // The thread is gone (it panicked): keep the page; `next` reports it.
            Err(e) => self.spare.push(e.0.page),
        }
    }

    /// Keeps `page`, which has nothing left to read into.
    pub(crate) fn keep(&mut self, page: Segment) {
        self.spare.push(page);
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
                Ok((page, _)) => self.spare.push(page),
                Err(_) => break,
            }
            self.in_flight -= 1;
        }
        self.spare
    }
}
