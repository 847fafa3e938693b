"""The Settings section over the versioned policy: show it, set a key, history, rollback.

``policy_section(library)`` is all the app calls; every change is a new policy version, so
nothing here can lose an earlier one.
"""

from __future__ import annotations

import json

import streamlit as st

from tools_store.errors import LibraryError
from tools_store.policies import PolicyError, calibration_note, change_for, settable_keys

from .render import label


def policy_section(library) -> None:
    """Show the policy in force and let a person change it, see its history and roll back."""
    st.subheader("Discovery and tool policy")
    policy = library.policy()
    with st.container(border=True):
        key = st.selectbox("Setting", settable_keys(policy, library.model_id),
                           key="policy-key")
        value = st.text_input("New value (JSON or text)", key="policy-value")
        if st.button("Save as a new policy version", key="policy-set"):
            try:
                version = library.set_policy(change_for(key, value),
                                             note=f"app: set {key} = {value}")
                st.success(f"Saved as policy version {version}.")
            except (PolicyError, LibraryError) as exc:
                st.error(label(f"Not saved: {exc}"))  # library text: shown as text
    history = library.policy_history()
    versions = [row["version"] for row in history]
    with st.container(border=True):
        target = st.selectbox("Roll back to version", versions[::-1], key="policy-target")
        if st.button("Roll back", key="policy-rollback") and target is not None:
            try:
                version = library.rollback_policy(int(target))
                st.success(f"Policy version {version} restores version {target}.")
            except (PolicyError, LibraryError) as exc:
                st.error(label(f"Not rolled back: {exc}"))
    policy, history = library.policy(), library.policy_history()
    note = calibration_note(policy, library.model_id)
    st.write(f"**Policy version {history[-1]['version']}** · embedding model "
             f"`{library.model_id}`")
    (st.info if note.startswith("calibrated") else st.warning)(f"Thresholds: {note}")
    st.code(json.dumps({k: v for k, v in policy.items() if k != "calibration"}, indent=2),
            language="json")
    st.dataframe([{"version": row["version"], "created": str(row["created_at"])[:19],
                   "note": row["note"]} for row in history[::-1]], hide_index=True)
