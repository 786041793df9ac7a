// One agent session: its details and its timeline of events, refreshed whenever the live feed reports a change to it.
import { useApi } from "../api.ts";
import { stamp, useNow, useStore } from "../lib.ts";
import { feed } from "../presence.ts";
import { Badge, Details, Frame, Notice, sessionTone, Spinner, When } from "../ui.tsx";
import { isActive, type SessionLookup, type SessionView } from "../../../shared/api-types.ts";
import { DISCONNECTED, type TimelineEntry, type TimelineEvent } from "../../../shared/events.ts";
import { heartbeatPath } from "../../../shared/paths.ts";

const EVENT_LABEL: Record<TimelineEvent, string> = {
  online: "Came online",
  reconnected: "Reconnected",
  working: "Working",
  idle: "Idle",
  renamed: "Renamed",
  ended: "Ended",
  failed: "Failed",
  expired: "Expired (no heartbeat)",
};

function reasonText(reason: string | null | undefined): string {
  if (!reason) return "";
  return reason === DISCONNECTED ? "the agent stopped sending heartbeats" : reason;
}

function Timeline(props: { entries: TimelineEntry[] }) {
  const entries = [...props.entries].reverse();
  if (entries.length === 0) return <p class="sub">No events yet.</p>;
  return (
    <ol class="timeline" data-testid="timeline">
      {entries.map((e, i) => {
        const bad = e.event === "failed" || e.event === "expired";
        return (
          <li key={`${e.at}-${i}`} class={bad ? "bad" : e.event === "ended" ? "muted" : ""} data-event={e.event}>
            <span class="mark" aria-hidden="true" />
            <div>
              <strong>{EVENT_LABEL[e.event] ?? e.event}</strong>
              {e.exitCode !== undefined && <span> · exit code {e.exitCode}</span>}
              {e.reason && <span> · {reasonText(e.reason)}</span>}
              <p class="sub">
                <time dateTime={e.at}>{stamp(e.at)}</time>
              </p>
            </div>
          </li>
        );
      })}
    </ol>
  );
}

export function SessionPage(props: { id: string }) {
  const now = useNow(1000);
  const live = useStore(feed.state).sessions.get(props.id);
  // The feed's copy changes on every event for this session: reload the timeline then.
  const version = live ? `${live.status}|${live.name}|${live.endedAt ?? ""}` : "";
  const [result, reload] = useApi<SessionLookup>(heartbeatPath(props.id), version);
  const detail = result.data?.data ?? null;
  const s: SessionView | null = live ?? detail;
  const title = s?.name || props.id;

  if (!s) {
    if (result.state === "loading")
      return (
        <Frame title="Session">
          <Spinner label="Loading the session…" />
        </Frame>
      );
    if (result.state === "error") {
      return (
        <Frame title="Session">
          <Notice tone="error">{result.error.message}</Notice>
          <button type="button" onClick={reload}>
            Try again
          </button>
        </Frame>
      );
    }
    return (
      <Frame title="Session">
        <Notice tone="error">No session has the id “{props.id}”. It may have ended more than 7 days ago.</Notice>
        <p>
          <a href="/">Back to sessions</a>
        </p>
      </Frame>
    );
  }
  const tone = sessionTone(s, now);
  const active = isActive(s.status);
  return (
    <Frame title={title}>
      <p class="back">
        <a href="/">← All sessions</a>
      </p>
      <div class={`card session ${tone.tone}`} data-testid="session-detail" data-status={tone.key}>
        <div class="row">
          <Badge tone={tone.tone}>{tone.label}</Badge>
          {tone.tone === "bad" && s.reason && <span class="sub">{reasonText(s.reason)}</span>}
        </div>
        <Details
          rows={[
            ["Session id", <code>{s.id}</code>],
            ["Host", `${s.hostname ?? "unknown"}${s.pid !== null ? ` · pid ${s.pid}` : ""}`],
            ["Owner", s.owner],
            ["Started", <When at={s.startedAt} now={now} missing="not reported" />],
            ["Last heartbeat", <When at={s.lastHeartbeat} now={now} />],
            active ? ["Expires", <When at={s.expiresAt} now={now} />] : ["Stopped", <When at={s.endedAt ?? null} now={now} />],
          ]}
        />
      </div>
      <h2>Timeline</h2>
      {result.state === "error" && <Notice tone="error">{result.error.message}</Notice>}
      {detail ? <Timeline entries={detail.timeline} /> : <Spinner label="Loading the timeline…" />}
    </Frame>
  );
}
