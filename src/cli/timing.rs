//! Phase timing for profiling a command: with `KIZUKI_TIMING=1` in the
//! environment, each [`Phases::mark`] prints the time since the previous
//! one on stderr. Off (the default), a mark costs one branch.

use std::time::Instant;

pub struct Phases {
    last: Option<Instant>,
}

impl Phases {
    pub fn start() -> Self {
        let on = std::env::var_os("KIZUKI_TIMING").is_some_and(|v| v == "1");
        Phases {
            last: on.then(Instant::now),
        }
    }

    pub fn mark(&mut self, what: &str) {
        if let Some(last) = self.last {
            let now = Instant::now();
            eprintln!(
                "kizuki timing: {what}: {:.1} ms",
                (now - last).as_secs_f64() * 1e3
            );
            self.last = Some(now);
        }
    }
}
