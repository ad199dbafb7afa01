"""What a sandboxed run may use (``SandboxLimits``) and what it gives back (``SandboxResult``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits; the wall-time limit is the ``timeout`` argument of ``run_python``.

    Defaults fit tool steps of math solutions (sympy, numpy, small loops).
    """

    memory_mb: int = 1024  # address space of each process (RLIMIT_AS)
    max_output_bytes: int = 64 * 1024  # stdout + stderr; more ends the run with an error
    # processes and threads of the run together (RLIMIT_NPROC); with memory_mb it bounds the
    # memory of a whole run: at most max_processes * memory_mb
    max_processes: int = 8
    max_open_files: int = 64  # RLIMIT_NOFILE
    max_file_bytes: int = 16 * 1024 * 1024  # largest single file written (RLIMIT_FSIZE)
    disk_bytes: int = 64 * 1024 * 1024  # size of the run's temporary folder (a tmpfs)
    disk_inodes: int = 4096  # files and folders in it

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"SandboxLimits.{name}: expected a positive int, got {value!r}")
        if self.max_open_files < 8 or self.max_processes < 2:
            raise ValueError("SandboxLimits: max_open_files >= 8 and max_processes >= 2 needed")

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class SandboxResult:
    """One run: what it printed and how it ended.

    ``stdout`` is at most ``max_output_bytes`` (decoded as UTF-8, bad bytes replaced).
    ``error`` is None for a clean exit, else the end of the traceback (``"ZeroDivisionError:
    division by zero"``) or the limit that stopped the run. ``timed_out`` says the wall-time
    limit stopped it (``error`` then says so too).
    """

    stdout: str
    error: str | None
    timed_out: bool

    @property
    def ok(self) -> bool:
        return self.error is None
