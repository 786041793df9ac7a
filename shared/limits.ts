// The shapes and lengths of ids and names that more than one side checks, so a value one accepts the other accepts too.

/**
 * A session id: 1–128 of A-Z a-z 0-9 . _ : - (the edge's presence and the origin's API alike, so a session created at
 * the origin can beat at the edge under the same id).
 */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** A device id as the edge mints them. */
export const DEVICE_ID_PATTERN = /^dev_[A-Za-z0-9_-]{1,64}$/;

/** A session's display name. */
export const SESSION_NAME_MAX = 200;

/** A hostname as agents and CLIs report it (heartbeats, device logins). */
export const HOSTNAME_MAX = 255;
