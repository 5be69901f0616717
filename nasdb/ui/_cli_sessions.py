"""``nasdb sessions``: how people steered (HyperTendril's interaction analysis), from the log.

    nasdb sessions                        # one line per session, then which kinds of steering paid off
    nasdb sessions u1a2b3c4d5e6           # one session: time per view, its actions in order (a timeline)
    nasdb sessions --format json > s.json # everything (sessions, actions, steering, kinds)
    nasdb sessions --format csv > s.csv   # one row per action, steering outcomes filled in

Reads only (the UiAction events and the models view); the definitions are in `nasdb.ui.sessions`.
"""

from __future__ import annotations

import sys

import click

from nasdb.schema.errors import NotFound
from nasdb.ui import sessions as analysis
from nasdb.ui._context import Context, format_option, pass_ctx
from nasdb.ui._output import emit


def _fmt_s(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}:{s:02d}"


@click.command("sessions")
@click.argument("session", required=False)
@format_option
@pass_ctx
def sessions(ctx: Context, session: str | None, fmt: str) -> None:
    """Interaction analysis of the web app's sessions: time per view, actions in order, which
    steering actions led to models on the accuracy/params front and how much they moved it."""
    actions, models = analysis.load(ctx.db, session)
    if session and not actions:
        raise NotFound(f"no session {session!r} in the log (`nasdb sessions` lists them)")
    result = analysis.analyse(actions, models)
    if fmt == "json":
        sys.stdout.write(analysis.to_json(result) + "\n")
        return
    if fmt == "csv":
        sys.stdout.write(analysis.to_csv(result))
        return
    if session:
        [report] = result.sessions
        views = ", ".join(f"{v} {_fmt_s(s)}" for v, s in sorted(
            report.view_seconds.items(), key=lambda kv: -kv[1])) or "—"
        click.echo(f"session {report.session} · {report.actor or '?'} · "
                   f"{report.started:%Y-%m-%d %H:%M:%S} · {_fmt_s(report.seconds)} · "
                   f"time per view: {views}")
        outcome = {s.position: s for s in report.steering}
        rows = []
        for a in report.actions:
            s = outcome.get(a.position)
            rows.append({"+time": _fmt_s((a.at - report.started).total_seconds()),
                         "view": a.view, "action": a.action,
                         "models": " ".join(s.models) if s else "",
                         "on front": " ".join(s.on_front) if s else "",
                         "front gain": s.front_gain if s else None})
        emit(rows, title="actions in order (the timeline)")
        return
    emit([{"session": r.session, "actor": r.actor, "started": r.started,
           "length": _fmt_s(r.seconds), "actions": len(r.actions),
           "views": ", ".join(f"{v} {_fmt_s(s)}" for v, s in sorted(
               r.view_seconds.items(), key=lambda kv: -kv[1])[:3]),
           "steering": len(r.steering), "paid off": sum(s.paid_off for s in r.steering)}
          for r in result.sessions], title="sessions")
    emit([{"kind": k.kind, "actions": k.actions, "sessions": k.sessions, "models": k.models,
           "on front": k.on_front, "paid off": f"{k.paid_off}/{k.actions}",
           "front gain": k.front_gain} for k in result.kinds],
         title="which kinds of steering paid off (front gain: hypervolume in log10 params x "
               "accuracy)")


def register(cli: click.Group) -> None:
    cli.add_command(sessions)
