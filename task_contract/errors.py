"""Errors shared by the control plane and the agent."""

from __future__ import annotations


class ContractError(Exception):
    """Root of errors raised while checking data against the shared contract."""


class ParameterError(ContractError):
    """Raised when task parameters do not match the plugin's declaration.

    `field` is the dotted path of the offending field, e.g. `plugin_parameters.param1`.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
