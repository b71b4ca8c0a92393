//! `roomstate-replay [FILE]`: replays vendor API requests, one JSON object
//! per line, from FILE or standard input, and prints one response line per
//! input line. See the `roomstate_dialects` crate docs for the format.

use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use roomstate_dialects::{replay_line, Replayer};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let path = args.next();
    if args.next().is_some() {
        eprintln!("usage: roomstate-replay [FILE]");
        return ExitCode::from(2);
    }
    let input: Box<dyn BufRead> = match path {
        Some(p) if p != "-" => match std::fs::File::open(&p) {
            Ok(f) => Box::new(io::BufReader::new(f)),
            Err(e) => {
                eprintln!("roomstate-replay: {}: {e}", p.to_string_lossy());
                return ExitCode::from(2);
            }
        },
        _ => Box::new(io::stdin().lock()),
    };
    match run(input, &mut BufWriter::new(io::stdout().lock())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("roomstate-replay: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut input: Box<dyn BufRead>, out: &mut impl Write) -> io::Result<()> {
    let mut replayer = Replayer::new();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        // A line that is not UTF-8 is malformed input like any other.
        let line = String::from_utf8_lossy(&buf);
        writeln!(out, "{}", replay_line(&mut replayer, &line))?;
    }
    out.flush()
}
