//! The demo's terminal output: headings, time-stamped observations, and a live progress bar
//! (indicatif) on a terminal, or plain periodic lines when the output is a pipe or a file.
//!
//! Everything shown through a [`Console`] is what the caller observed; this module only formats.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::report;

/// ANSI styling, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    pub fn bold(self, text: &str) -> String {
        self.paint("1", text)
    }
    pub fn dim(self, text: &str) -> String {
        self.paint("2", text)
    }
    pub fn green(self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn red(self, text: &str) -> String {
        self.paint("31", text)
    }
    pub fn yellow(self, text: &str) -> String {
        self.paint("33", text)
    }
    pub fn cyan(self, text: &str) -> String {
        self.paint("36", text)
    }

    /// A condition status coloured by meaning: `True` green, `False` red, anything else yellow.
    pub fn status(self, status: &str) -> String {
        match status {
            "True" => self.green(status),
            "False" => self.red(status),
            other => self.yellow(other),
        }
    }
}

/// How often plain (non-terminal) progress lines are printed at most.
const PLAIN_PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Progress of a counted wait, drawn as a bar or as periodic lines.
enum Progress {
    Bar(ProgressBar),
    Plain {
        last_line: Option<Instant>,
        last_text: String,
    },
}

/// The demo's output.
pub struct Console<W: Write> {
    out: W,
    pub style: Style,
    /// Draw progress bars (stdout is a terminal).
    live: bool,
    started: Instant,
    progress: Option<Progress>,
}

impl<W: Write> Console<W> {
    pub fn new(out: W, style: Style, live: bool) -> Console<W> {
        Console {
            out,
            style,
            live,
            started: Instant::now(),
            progress: None,
        }
    }

    /// Time since the console was created (the demo's clock).
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Writes one line, above the progress bar if one is drawn.
    pub fn line(&mut self, text: &str) {
        match &self.progress {
            Some(Progress::Bar(bar)) => bar.println(text),
            _ => {
                // Output is best effort: a closed pipe must not abort the teardown.
                let _ = writeln!(self.out, "{text}");
                let _ = self.out.flush();
            }
        }
    }

    /// A blank line then a numbered heading.
    pub fn step(&mut self, number: usize, title: &str) {
        self.line("");
        let heading = self.style.bold(&format!("{number}. {title}"));
        self.line(&heading);
    }

    /// An observation, stamped with the demo's clock: `[  3.2s] text`.
    pub fn event(&mut self, text: &str) {
        let stamp = self
            .style
            .dim(&format!("[{:>6.1}s]", self.elapsed().as_secs_f64()));
        self.line(&format!("{stamp} {text}"));
    }

    /// Starts counting towards `total`.
    pub fn start_progress(&mut self, total: u64) {
        self.progress = Some(if self.live {
            let _ = self.out.flush();
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stdout());
            bar.set_style(
                ProgressStyle::with_template(
                    "  {spinner:.cyan} [{bar:16.green}] {pos}/{len} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            Progress::Bar(bar)
        } else {
            Progress::Plain {
                last_line: None,
                last_text: String::new(),
            }
        });
    }

    /// Updates the count and its description; plain output prints a line when the text changed,
    /// at most once per second.
    pub fn set_progress(&mut self, position: u64, total: u64, message: &str) {
        match &mut self.progress {
            Some(Progress::Bar(bar)) => {
                bar.set_position(position);
                bar.set_message(message.to_string());
            }
            Some(Progress::Plain {
                last_line,
                last_text,
            }) => {
                let text = format!("{position}/{total} {message}");
                let due = last_line.is_none_or(|t| t.elapsed() >= PLAIN_PROGRESS_EVERY);
                if due && text != *last_text {
                    *last_line = Some(Instant::now());
                    *last_text = text.clone();
                    let stamp = format!("[{:>6.1}s]", self.started.elapsed().as_secs_f64());
                    let _ = writeln!(self.out, "{stamp}   … {text}");
                }
            }
            None => {}
        }
    }

    /// Removes the bar (the caller prints the outcome as an event).
    pub fn finish_progress(&mut self) {
        if let Some(Progress::Bar(bar)) = self.progress.take() {
            bar.finish_and_clear();
        }
    }

    /// A rendered table, indented under a `$ command` line.
    pub fn table(&mut self, command: &str, table: &report::Table, more: usize) {
        let prompt = self.style.dim(&format!("$ {command}"));
        self.line(&prompt);
        for (i, row) in table.render().lines().enumerate() {
            let row = if i == 0 {
                self.style.bold(row)
            } else {
                row.to_string()
            };
            self.line(&row);
        }
        if more > 0 {
            let text = self.style.dim(&format!("… {more} more"));
            self.line(&text);
        }
    }

    /// Gives the writer back (tests read what was printed).
    #[cfg(test)]
    pub fn into_inner(mut self) -> W {
        self.finish_progress();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_style_adds_no_escape_codes() {
        let plain = Style { color: false };
        assert_eq!(plain.red("False"), "False");
        let color = Style { color: true };
        assert_eq!(color.green("True"), "\x1b[32mTrue\x1b[0m");
        assert_eq!(color.status("Unknown"), "\x1b[33mUnknown\x1b[0m");
    }

    #[test]
    fn plain_progress_prints_changes_at_most_once_per_second() {
        let mut console = Console::new(Vec::new(), Style { color: false }, false);
        console.start_progress(10);
        console.set_progress(1, 10, "reassigned");
        console.set_progress(2, 10, "reassigned");
        console.finish_progress();
        console.event("done");
        let text = String::from_utf8(console.into_inner()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("… 1/10 reassigned"), "{text}");
        assert!(lines[1].ends_with("] done"), "{text}");
    }
}
