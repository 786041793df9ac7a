// The network the edge keys its limits by: IPv4 as it is, IPv6 per /64, IPv4-mapped IPv6 as IPv4.
import { describe, expect, it } from "vitest";
import { networkOf } from "../../../worker/auth/network.ts";

describe("networkOf", () => {
  it.each([
    ["203.0.113.9", "203.0.113.9"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::", "2001:db8:1:2::/64"],
    ["2001:0DB8:0001:0002:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
    ["::ffff:198.51.100.7", "198.51.100.7"],
    ["64:ff9b::198.51.100.7", "64:ff9b:0:0::/64"],
    ["local", "local"],
    ["not an address", "not an address"],
    ["1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9"],
    ["1::2::3", "1::2::3"],
    ["300.1.1.1", "300.1.1.1"],
  ])("%s -> %s", (ip, network) => {
    expect(networkOf(ip)).toBe(network);
  });

  it("gives every address of a /64 the same key, and the next /64 another", () => {
    expect(networkOf("2001:db8:a:b::1")).toBe(networkOf("2001:db8:a:b:ffff:ffff:ffff:ffff"));
    expect(networkOf("2001:db8:a:b::1")).not.toBe(networkOf("2001:db8:a:c::1"));
  });
});
