"""The app's Workflows page: what the agent learned from multi-step requests."""

from __future__ import annotations

import streamlit as st

from ui.render import label


def workflows_page(agent) -> None:
    """Every learned workflow: its steps and data flow, use and success, its composite."""
    workflows = agent.workflows()
    st.subheader(f"{len(workflows)} learned workflows")
    if not workflows:
        st.info("None yet: a request that needs several tools in sequence is recorded as a "
                "workflow once it has run to the end.")
    for workflow in workflows:
        rate = "—" if workflow["success_rate"] is None else f"{workflow['success_rate']:.0%}"
        tools = " → ".join(step["tool"] for step in workflow["steps"])
        badge = f" · composite {workflow['composite']}" if workflow["composite"] else ""
        with st.expander(label(f"#{workflow['id']} {tools} · used {workflow['uses']}× · "
                               f"success {rate}{badge}")):
            st.text(workflow["request"])  # the user's words: text, never markdown
            st.table([{"step": n, "tool": f"{s['tool']} v{s['version']}",
                       "inputs": ", ".join(f"{arg} ← {next(iter(b.values()))}"
                                           for arg, b in s["bindings"].items()),
                       "writes": ", ".join(s["outputs"])}
                      for n, s in enumerate(workflow["steps"], 1)])
            if workflow["promotion"]:
                st.text(f"Last promotion: {workflow['promotion'].get('status')} "
                        f"{workflow['promotion'].get('reason', '')}")
            action = "Re-verify the composite" if workflow["composite"] else "Promote now"
            if st.button(action, key=f"promote-{workflow['id']}"):
                with st.spinner("Promoting (spec, tests, replay tests, sandbox)..."):
                    outcome = agent.promote_workflow(workflow["id"])
                (st.success if outcome["status"] in ("promoted", "updated", "current")
                 else st.error)(label(f"{outcome['status']}: "
                                      f"{outcome.get('reason') or outcome}"))
