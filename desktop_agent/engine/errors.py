"""Errors raised by the agent engine's container executor."""

from __future__ import annotations


class ExecutorError(Exception):
    """Root of errors the executor raises instead of returning a TaskOutcome.

    Plugin failures (non-zero exit, bad result, timeout, ...) are not errors here:
    they come back as a failed TaskOutcome. These exceptions mean the run could not
    be judged at all.
    """


class ImageMissingError(ExecutorError):
    """Raised by `DockerExecutor.ensure_image` when the plugin image is not on this
    machine and cannot be pulled; the message says how to provide it.

    `DockerExecutor.run` turns it into a TaskOutcome with failure kind `image_missing`.
    """


class RunInterruptedError(ExecutorError):
    """Raised by `DockerExecutor.run` when the agent's own shutdown (`kill_all`) stopped
    the container, or the run was started after shutdown began.

    The plugin is not at fault: the caller should not report an outcome and should
    leave the message unacknowledged so the broker delivers the task again.
    """
