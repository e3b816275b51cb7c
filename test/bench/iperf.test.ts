import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseIperfJson } from '../../bench/wg-pair.js';

// the end of `iperf3 -u -J` (3.12) over a bare veth: the sender offered 1,603 Mbit/s, 43.9 % was lost
const UDP = {
  end: {
    sum: { bits_per_second: 1603291967, bytes: 400827000, lost_percent: 43.87 },
    sum_sent: { bits_per_second: 1603291967, bytes: 400827000, lost_percent: 0 },
    sum_received: { bits_per_second: 899924053, bytes: 224992600, lost_percent: 43.87 },
  },
};

test('iperf3 UDP: the throughput is what arrived and the loss is the receiver’s', () => {
  assert.deepEqual(parseIperfJson(JSON.stringify(UDP)), { mbps: 899.924053, lossPct: 43.87, bytes: 224992600 });
});

test('iperf3 TCP and older UDP output', () => {
  const tcp = { end: { sum_sent: { bits_per_second: 2e9, bytes: 5 }, sum_received: { bits_per_second: 1e9, bytes: 625000000 } } };
  assert.deepEqual(parseIperfJson(JSON.stringify(tcp)), { mbps: 1000, lossPct: 0, bytes: 625000000 });
  const oldUdp = { end: { sum: { bits_per_second: 1e9, bytes: 1000, lost_percent: 10 } } };
  assert.deepEqual(parseIperfJson(JSON.stringify(oldUdp)), { mbps: 900, lossPct: 10, bytes: 1000 });
  assert.throws(() => parseIperfJson('{"error":"unable to connect"}'), /no end.sum_received or end.sum/);
});
