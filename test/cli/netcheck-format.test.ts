import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatNetcheck } from '../../src/cli/netcheck.js';

test('netcheck report: the contract’s lines, regions sorted by latency, unreachable ones named', () => {
  const text = formatNetcheck({
    udp: true,
    ipv4: '7.0.113.12:41641',
    mappingVariesByDestIP: false,
    regionLatencyMs: { west: 9.04, east: 4.5 },
    preferredRegion: 'east',
    mapped: [],
    portMapping: ['UPnP', 'NAT-PMP'],
    at: '2026-11-26T00:00:00Z',
    homeRegion: 'west',
    relays: [{ region: 'north', url: 'https://n', connected: false, latencyMs: null, lastError: 'refused' }],
  });
  assert.equal(
    text,
    'Report:\n\t* UDP: true\n\t* IPv4: yes, 7.0.113.12:41641\n\t* MappingVariesByDestIP: false\n\t* PortMapping: UPnP, NAT-PMP\n\t* Nearest relay: east (home stays west)\n\t* Relay latency:\n\t\t- east: 4.5ms\n\t\t- west: 9.0ms\n\t\t- north: unreachable\n',
  );
  const blocked = formatNetcheck({
    udp: false,
    ipv4: null,
    mappingVariesByDestIP: null,
    regionLatencyMs: {},
    preferredRegion: null,
    mapped: [],
    portMapping: [],
    at: '',
    homeRegion: null,
    relays: [],
  });
  assert.match(
    blocked,
    /UDP: false\n\t\* IPv4: no\n\t\* MappingVariesByDestIP: unknown \(needs two STUN servers\)\n\t\* PortMapping: none\n\t\* Nearest relay: none reachable/,
  );
});
