//! A writer thread: jobs go to a thread that owns the I/O pages, and come back with their
//! results, so that the caller goes on (filling and sorting the next buffer) while the
//! thread writes.

use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::segment::Segment;

/// One thread that runs jobs in order with its own pages, and hands their results back.
pub struct BackgroundWriter<J: Send + 'static, R: Send + 'static> {
    jobs: Option<Sender<J>>,
    results: Receiver<R>,
    thread: Option<JoinHandle<Vec<Segment>>>,
    pending: usize,
}

impl<J: Send + 'static, R: Send + 'static> BackgroundWriter<J, R> {
    /// Starts the thread; `work` runs each job with the thread's `pages`.
    pub fn start(
        pages: Vec<Segment>,
        mut work: impl FnMut(J, &mut Vec<Segment>) -> R + Send + 'static,
    ) -> Result<Self> {
        let (job_tx, job_rx) = channel::<J>();
        let (result_tx, result_rx) = channel::<R>();
        let thread = std::thread::Builder::new()
            .name("memseg-spill".into())
            .spawn(move || {
                let mut pages = pages;
                for job in job_rx {
                    if result_tx.send(work(job, &mut pages)).is_err() {
                        break;
                    }
                }
                pages
            })
            .map_err(|e| Error::Io(format!("starting the spill writer thread: {e}")))?;
        Ok(BackgroundWriter {
            jobs: Some(job_tx),
            results: result_rx,
            thread: Some(thread),
            pending: 0,
        })
    }

    /// Jobs submitted whose results have not been taken yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Hands a job to the thread.
    pub fn submit(&mut self, job: J) -> Result<()> {
        let sent = self.jobs.as_ref().map(|tx| tx.send(job).is_ok());
        if sent != Some(true) {
            return Err(self.thread_died());
        }
        self.pending += 1;
        Ok(())
    }

    /// Waits for the result of the oldest job not yet taken.
    pub fn wait(&mut self) -> Result<R> {
        if self.pending == 0 {
            return Err(Error::invalid("no spill job is pending"));
        }
        match self.results.recv() {
            Ok(r) => {
                self.pending -= 1;
                Ok(r)
            }
            Err(_) => Err(self.thread_died()),
        }
    }

    fn thread_died(&mut self) -> Error {
        self.jobs = None;
        let why = match self.thread.take().map(JoinHandle::join) {
            Some(Err(p)) => p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into()),
            _ => "an unknown cause".into(),
        };
        Error::Io(format!("the spill writer thread ended with {why}"))
    }

    /// Ends the thread once its jobs are done (their results not taken are dropped) and
    /// returns its pages.
    pub fn stop(mut self) -> Result<Vec<Segment>> {
        self.jobs = None;
        while self.pending > 0 && self.results.recv().is_ok() {
            self.pending -= 1;
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(pages)) => Ok(pages),
            _ => Err(self.thread_died()),
        }
    }
}

impl<J: Send + 'static, R: Send + 'static> Drop for BackgroundWriter<J, R> {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_on_the_page_and_the_page_comes_back() {
        let page = Segment::allocate_heap(8).unwrap();
        let mut w = BackgroundWriter::start(vec![page], |job: u8, pages: &mut Vec<Segment>| {
            pages[0].as_mut_slice()[job as usize] = job;
            job * 2
        })
        .unwrap();
        assert!(w.wait().is_err(), "nothing pending");
        for j in 1..5 {
            w.submit(j).unwrap();
        }
        assert_eq!(w.pending(), 4);
        assert_eq!(w.wait().unwrap(), 2);
        assert_eq!(w.wait().unwrap(), 4);
        let pages = w.stop().unwrap();
        assert_eq!(&pages[0].as_slice()[..5], [0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_panicking_job_is_an_io_error_not_a_hang() {
        let page = Segment::allocate_heap(8).unwrap();
        let mut w = BackgroundWriter::start(vec![page], |_: u8, _: &mut Vec<Segment>| -> u8 {
            panic!("boom")
        })
        .unwrap();
        w.submit(1).unwrap();
        let e = w.wait().unwrap_err();
        assert!(matches!(&e, Error::Io(m) if m.contains("boom")), "{e}");
        assert!(w.submit(2).is_err());
    }
}
