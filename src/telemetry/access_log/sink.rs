//! Where access-log lines go: standard output or error, a file that can be reopened at its path
//! (for logrotate: rename the file, then `SIGUSR1` or a reload), or any writer.

use crate::config::AccessLogTarget;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The writer thread's destination.
pub enum Sink {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file appended to, with the path it is opened at again on [`Sink::reopen`].
    File {
        /// The configured path.
        path: PathBuf,
        /// The file opened there last.
        file: File,
    },
    /// Any writer (tests, embedding); reopening does nothing.
    Writer(Box<dyn Write + Send>),
}

impl Sink {
    /// The sink a config asks for; `None` for `off`. The error is the file's.
    pub fn open(target: &AccessLogTarget) -> io::Result<Option<Sink>> {
        Ok(match target {
            AccessLogTarget::Off => None,
            AccessLogTarget::Stdout => Some(Sink::Stdout),
            AccessLogTarget::Stderr => Some(Sink::Stderr),
            AccessLogTarget::File(path) => Some(Sink::File { file: append(path)?, path: path.clone() }),
        })
    }

    /// Opens a file sink's path again, so lines go to the file now there (a new one if the old
    /// was renamed). When that fails the old file keeps receiving lines and the error goes to
    /// the log.
    pub fn reopen(&mut self) {
        if let Sink::File { path, file } = self {
            match append(path) {
                Ok(new) => *file = new,
                Err(e) => {
                    log::error!("cannot reopen access log {}: {e}; still writing to the old file", path.display())
                }
            }
        }
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Sink::Stdout => io::stdout().write(buf),
            Sink::Stderr => io::stderr().write(buf),
            Sink::File { file, .. } => file.write(buf),
            Sink::Writer(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::Stdout => io::stdout().lock().write_all(buf),
            Sink::Stderr => io::stderr().lock().write_all(buf),
            Sink::File { file, .. } => file.write_all(buf),
            Sink::Writer(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Sink::Stdout => io::stdout().flush(),
            Sink::Stderr => io::stderr().flush(),
            Sink::File { file, .. } => file.flush(),
            Sink::Writer(w) => w.flush(),
        }
    }
}
