// Int32 slots of the SharedArrayBuffer between a TUN device and its reader thread.
export const READER_STOP = 0;
export const READER_GSO_READS = 1;
export const READER_SEGMENTS = 2;
export const READER_DROPPED = 3;
export const READER_SLOTS = 4;
