"""Exceptions raised by `occ`. Each message names the file, parameter or key at fault and what to do."""


class OccError(Exception):
    """Base class of every error `occ` raises on purpose."""


class ConfigError(OccError, ValueError):
    """A parameter in params.yaml (or passed in code) is unknown, of the wrong type or out of range."""


class DataError(OccError, ValueError):
    """An audio file, dataset folder or feature cache cannot be used."""


class CheckpointError(OccError, RuntimeError):
    """A checkpoint is missing, corrupt, or was written by another architecture or configuration."""


class WeightsNotFoundError(OccError, FileNotFoundError):
    """Pretrained weights (VGGish, aisfx, HiFi-GAN) are not available; the message says where to get them."""


class TrainingDivergedError(OccError, RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint was kept."""


class WriteError(OccError, OSError):
    """A file cannot be written: the disk is full or the folder is not writable; the message names the target.

    Constructed as ``WriteError(errno, message)``; ``str()`` is the message alone.
    """

    def __str__(self) -> str:
        return self.strerror or super().__str__()


class ConfigChangedError(CheckpointError):
    """A run folder's checkpoint was written with another configuration, seed or data than requested."""


class RunLockedError(OccError, RuntimeError):
    """Another process is training in the same run folder; the message names the folder and its pid."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped with Ctrl-C (SIGINT); the message says which checkpoint was kept.

    A ``KeyboardInterrupt``, so that ``except Exception`` does not swallow it.
    """
