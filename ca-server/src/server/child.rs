//! Replica processes started by another process (`ca-server local`, tests, benchmarks) die with
//! it, even when it is killed with SIGKILL and cannot stop them itself.

/// Makes the child `command` starts receive SIGKILL when its parent dies (Linux
/// `PR_SET_PDEATHSIG`).
pub fn die_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec the child only calls prctl(2), which is async-signal-safe
    // and touches no memory of ours.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
