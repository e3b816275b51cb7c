// Counter slots of the UDP reader's ring (util/shm-ring.ts) that the reader thread adds to and the event loop reads.
import { RING_USER_SLOT } from '../../util/shm-ring.js';

/** reads that brought datagrams the kernel merged (UDP_GRO), with their segment size */
export const UDP_GRO_READS = RING_USER_SLOT;
/** the datagrams those reads were split into */
export const UDP_GRO_DATAGRAMS = RING_USER_SLOT + 1;
/** reads the thread split by their headers (merged, read after UDP_GRO was off) whose segments did not fit one size */
export const UDP_GRO_SPLIT_FAILURES = RING_USER_SLOT + 2;
