// The TCP sockets a process holds, read from Linux's /proc, so a test can count its connections without asking it.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/** /proc/net/tcp's connection states (include/net/tcp_states.h), by their hex code. */
const STATES: Record<string, string> = {
  "01": "ESTABLISHED",
  "02": "SYN_SENT",
  "03": "SYN_RECV",
  "04": "FIN_WAIT1",
  "05": "FIN_WAIT2",
  "06": "TIME_WAIT",
  "07": "CLOSE",
  "08": "CLOSE_WAIT",
  "09": "LAST_ACK",
  "0A": "LISTEN",
  "0B": "CLOSING",
};

export interface TcpSocket {
  localPort: number;
  remotePort: number;
  state: string;
}

/** The socket inodes behind the process's open file descriptors (fds that close meanwhile are skipped). */
function socketInodes(pid: number): Set<string> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
      if (inode) inodes.add(inode);
    } catch {
      // Closed between the listing and the read.
    }
  }
  return inodes;
}

/**
 * The TCP sockets (IPv4 and IPv6) that process `pid` has open, optionally only those on `localPort` or to
 * `remotePort`. A socket the process has closed is not its own any more, even while the kernel lingers in TIME_WAIT.
 */
export function tcpSockets(pid: number, filter: { localPort?: number; remotePort?: number } = {}): TcpSocket[] {
  const inodes = socketInodes(pid);
  const found: TcpSocket[] = [];
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode …
      const [, local = "", remote = "", st = "", , , , , , inode = ""] = line.trim().split(/\s+/);
      if (!inodes.has(inode)) continue;
      const localPort = Number.parseInt(local.split(":")[1] ?? "", 16);
      const remotePort = Number.parseInt(remote.split(":")[1] ?? "", 16);
      if (filter.localPort !== undefined && localPort !== filter.localPort) continue;
      if (filter.remotePort !== undefined && remotePort !== filter.remotePort) continue;
      found.push({ localPort, remotePort, state: STATES[st] ?? st });
    }
  }
  return found;
}
