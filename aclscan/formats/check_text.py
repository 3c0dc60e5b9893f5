"""The readiness check for people: the headline, the rules and their evidence, every
piece of text from the scan terminal-safe (`aclscan check --format text`)."""

from __future__ import annotations

from aclscan.formats.rows import terminal_safe

_MARKS = {"pass": "PASS", "fail": "FAIL", "skipped": "SKIP"}


def render_text(result, *, source: str) -> str:
    """The check for people: every piece of text from the scan is terminal-safe."""
    machine = result.machine
    name = machine.get("computer_name") or "(no computer name)"
    failed = len(result.failed)
    unjudged = len(result.unjudged)
    counts = f"{failed} of {len(result.rules)} rules failed" if failed else "no rule failed"
    if unjudged:
        counts += f", {unjudged} not judged" + (" (failing with --strict)" if result.strict else
                                                 " (--strict makes that a failure)")
    lines = [terminal_safe(result.headline),
             terminal_safe(f"{name} {machine.get('machine_sid') or '(no machine SID)'} ({source})"),
             counts]
    width = max(len(r.name) for r in result.rules)
    for rule in result.rules:
        lines.append(terminal_safe(f"  {_MARKS[rule.status]}  {rule.name:<{width}}  {rule.summary}"))
        for item in rule.evidence:
            lines.append(terminal_safe(f"        - {item}"))
    return "\n".join(lines) + "\n"
