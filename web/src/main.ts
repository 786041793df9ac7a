// Placeholder app: shows which route it was opened at and whether the edge is healthy.
const status = document.querySelector<HTMLParagraphElement>("#status");

async function show(): Promise<void> {
  if (!status) return;
  try {
    const res = await fetch("/health", { headers: { accept: "application/json" } });
    const body = (await res.json()) as { status: string; version: string };
    status.textContent = `Edge ${body.status} (v${body.version}) — route ${location.pathname}`;
    status.dataset.state = body.status;
  } catch {
    status.textContent = "The edge is not reachable.";
    status.dataset.state = "offline";
  }
}

void show();
