"""The settings page: the model, the embedding model, the sandbox, the thresholds, the policy.

The sandbox check runs at most every ten minutes (or on request), not on every visit; the
policy section (``ui/policy_settings.py``) sets, lists and rolls back policy versions.
"""

from __future__ import annotations

import streamlit as st

from . import backend
from .policy_settings import policy_section
from .render import label


def settings_page() -> None:
    """Show what the agent runs with."""
    agent = backend.agent()
    library = agent.library
    st.text(f"Model: {agent.context.model}")
    st.text(f"Embedding model: {library.model_id}"
            + ("" if backend.runs().ready.is_set() else " (loading)"))
    st.text(f"Sandbox backend: {agent.context.sandbox_backend} "
            f"(warm pool: {agent.context.sandbox_pool})")
    report = backend.sandbox_check()
    for name in ("docker", "bwrap"):
        info = report[name]
        if info.get("ok"):
            st.success(f"{name}: works")
        else:
            st.error(label(f"{name}: {info.get('error')}"))
    if st.button("Check the sandboxes again"):
        backend.sandbox_check.clear()
        st.rerun()
    policy = library.policy()
    st.write("Thresholds (for this embedding model):", library.thresholds(policy))
    st.write("Re-ranking weights:", policy["weights"])
    st.text(f"Reflections allowed: {policy['max_retries']}")
    policy_section(library)
