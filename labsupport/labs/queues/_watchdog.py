"""Run a program until our standard input closes, then end it (the broker's dead-man switch).

Usage: ``python _watchdog.py PROGRAM ARGS...``. The lab starts this with a pipe
as standard input and keeps the pipe's write end open. When the kernel stops
cleanly it closes the pipe; when the kernel is killed (even with SIGKILL) the
operating system closes it. Either way ``read`` returns end-of-file here and
the program is terminated, so no broker outlives its kernel. The program's
output goes where ours goes; it exits with the program's exit status.

Standard library only, and no code of the lab: it runs as its own small process.
"""

import subprocess
import sys
import threading

GRACE_SECONDS = 5


def main() -> int:
    program = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)

    def end_on_eof() -> None:
        while sys.stdin.buffer.read(1024):
            pass
        if program.poll() is None:
            program.terminate()
            try:
                program.wait(GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                program.kill()

    threading.Thread(target=end_on_eof, daemon=True).start()
    return program.wait()


if __name__ == "__main__":
    sys.exit(main())
