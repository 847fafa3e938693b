"""The app's Workflows page: what the agent learned from multi-step requests."""

from __future__ import annotations

import streamlit as st


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
        with st.expander(f"#{workflow['id']} {tools} · used {workflow['uses']}× · success "
                         f"{rate}{badge}"):
            st.write(workflow["request"])
            st.table([{"step": n, "tool": f"{s['tool']} v{s['version']}",
                       "inputs": ", ".join(f"{arg} ← {next(iter(b.values()))}"
                                           for arg, b in s["bindings"].items()),
                       "writes": ", ".join(s["outputs"])}
                      for n, s in enumerate(workflow["steps"], 1)])
            if workflow["promotion"]:
                st.caption(f"Last promotion: {workflow['promotion'].get('status')} "
                           f"{workflow['promotion'].get('reason', '')}")
            label = "Re-verify the composite" if workflow["composite"] else "Promote now"
            if st.button(label, key=f"promote-{workflow['id']}"):
                with st.spinner("Promoting (spec, tests, replay tests, sandbox)..."):
                    outcome = agent.promote_workflow(workflow["id"])
                (st.success if outcome["status"] in ("promoted", "updated", "current")
                 else st.error)(f"{outcome['status']}: {outcome.get('reason') or outcome}")
