"""The sandbox's errors: callers catch ``SandboxError`` and nothing of the drivers below."""


class SandboxError(Exception):
    """Anything the sandbox cannot do that is not a verdict on the code it runs."""


class SandboxUnavailable(SandboxError):
    """The sandbox cannot run anything: no daemon, no image, no bubblewrap, no limits."""


class SandboxFault(SandboxError):
    """One run broke for reasons outside the code (its container killed or gone mid-run).

    Not a verdict on the code: a retry on a fresh container may well succeed.
    """


class LimitError(SandboxError, ValueError):
    """A resource limit that would not limit: zero, negative, infinite or not a number."""
