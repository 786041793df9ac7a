// Home: whether the laptop's origin is online, and every agent session live, with expiries and failures standing out.
import { ago, duration, useNow, useStore } from "../lib.ts";
import { feed, type FeedState } from "../presence.ts";
import { isActive, type SessionView } from "../../../shared/api-types.ts";
import { Badge, Frame, Notice, sessionTone, Spinner, When } from "../ui.tsx";

const ORIGIN_LABEL = { online: "Laptop online", offline: "Laptop offline", unreachable: "Laptop unreachable" } as const;

/** The laptop's one state: online, offline (asleep or gone, with when it was last seen), or unreachable (awake, tunnel down). */
function OriginCard(props: { state: FeedState; now: number }) {
  const origin = props.state.origin;
  if (!origin) return null;
  const seen = origin.lastSeen ? ago(origin.lastSeen, props.now) : null;
  const detail =
    origin.state === "online"
      ? origin.link
        ? "Awake and reachable"
        : seen
          ? `Reachable · checked ${seen}`
          : "Reachable through the tunnel"
      : origin.state === "unreachable"
        ? "Awake, but the tunnel is not answering"
        : seen
          ? `Asleep or stopped · last seen ${seen}`
          : "Not seen yet";
  return (
    <section
      class={`card origin ${origin.state === "online" ? "up" : origin.state === "unreachable" ? "warn" : "down"}`}
      aria-label="Laptop"
      data-testid="origin"
      data-online={String(origin.online)}
      data-state={origin.state}
    >
      <span class="dot" aria-hidden="true" />
      <div>
        <strong>{ORIGIN_LABEL[origin.state]}</strong>
        <p class="sub">{detail}</p>
      </div>
    </section>
  );
}

function LinkStatus(props: { state: FeedState; now: number }) {
  const { link, retryAt } = props.state;
  if (link === "live") {
    return (
      <p class="link live" data-testid="link" data-link="live">
        <span class="dot" aria-hidden="true" /> Live
      </p>
    );
  }
  const label =
    link === "retrying"
      ? retryAt && retryAt > Date.now()
        ? `Connection lost. Retrying in ${duration(retryAt - Date.now())}…`
        : "Connection lost. Reconnecting…"
      : "Connecting…";
  return (
    <div class="link" data-testid="link" data-link={link} role="status">
      <span>{label}</span>
      {link === "retrying" && (
        <button type="button" class="ghost small" onClick={() => feed.reconnectNow()}>
          Retry now
        </button>
      )}
    </div>
  );
}

function SessionCard(props: { s: SessionView; now: number }) {
  const { s, now } = props;
  const tone = sessionTone(s, now);
  const active = isActive(s.status);
  const left = s.expiresAt ? Date.parse(s.expiresAt) - now : null;
  return (
    <li class={`card session ${tone.tone}`} data-testid="session" data-session={s.id} data-status={tone.key}>
      <div class="row">
        <a class="name" href={`/sessions/${encodeURIComponent(s.id)}`}>
          {s.name || s.id}
        </a>
        <Badge tone={tone.tone}>{tone.label}</Badge>
      </div>
      <p class="sub">
        {s.hostname ?? "unknown host"}
        {s.pid !== null ? ` · pid ${s.pid}` : ""}
        {s.owner ? ` · ${s.owner}` : ""}
      </p>
      <p class="meta">
        <span>
          Heartbeat <When at={s.lastHeartbeat} now={now} />
        </span>
        {active && left !== null && <span class={left < 5000 ? "soon" : ""}>{left > 0 ? `Expires in ${duration(left)}` : `Overdue ${duration(-left)}`}</span>}
        {!active && s.endedAt && (
          <span>
            {tone.key === "ended" ? "Ended" : "Stopped"} <When at={s.endedAt} now={now} />
          </span>
        )}
      </p>
    </li>
  );
}

function order(a: SessionView, b: SessionView): number {
  const rank = (s: SessionView) => (isActive(s.status) ? 0 : s.status === "failed" ? 1 : 2);
  return rank(a) - rank(b) || Date.parse(b.endedAt ?? b.lastHeartbeat) - Date.parse(a.endedAt ?? a.lastHeartbeat);
}

export function Home() {
  const state = useStore(feed.state);
  const now = useNow(1000);
  const sessions = [...state.sessions.values()].sort(order);
  const live = sessions.filter((s) => isActive(s.status));
  const stopped = sessions.filter((s) => !isActive(s.status));
  return (
    <Frame title="Sessions">
      <div class="status-row">
        <OriginCard state={state} now={now} />
        <LinkStatus state={state} now={now} />
      </div>
      <div class="alerts" aria-live="assertive">
        {state.alerts.map((a) => (
          <div class={`alert ${a.kind}`} role="alert" key={a.key} data-testid="alert">
            <span>
              <a href={`/sessions/${encodeURIComponent(a.sessionId)}`}>{a.label}</a> {a.kind === "expired" ? "stopped sending heartbeats" : "failed"}{" "}
              {ago(a.at, now)}.
            </span>
            <button type="button" class="ghost small" aria-label={`Dismiss the alert about ${a.label}`} onClick={() => feed.dismiss(a.key)}>
              Dismiss
            </button>
          </div>
        ))}
      </div>
      {state.seq === null && state.sessions.size === 0 ? (
        <Spinner label="Loading sessions…" />
      ) : sessions.length === 0 ? (
        <Notice>
          No agent sessions yet. Start one on your laptop with <code>outpost run -- &lt;command&gt;</code>.
        </Notice>
      ) : (
        <>
          <h2>Live ({live.length})</h2>
          {live.length === 0 ? (
            <p class="sub">No agent is running right now.</p>
          ) : (
            <ul class="list">
              {live.map((s) => (
                <SessionCard key={s.id} s={s} now={now} />
              ))}
            </ul>
          )}
          {stopped.length > 0 && (
            <>
              <h2>Stopped ({stopped.length})</h2>
              <ul class="list">
                {stopped.map((s) => (
                  <SessionCard key={s.id} s={s} now={now} />
                ))}
              </ul>
            </>
          )}
        </>
      )}
    </Frame>
  );
}
