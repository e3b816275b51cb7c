// Counter slots of the TUN reader's ring (util/shm-ring.ts) that the device reads.
import { RING_USER_SLOT } from '../util/shm-ring.js';

export const READER_GSO_READS = RING_USER_SLOT;
export const READER_SEGMENTS = RING_USER_SLOT + 1;
export const READER_DROPPED = RING_USER_SLOT + 2;
