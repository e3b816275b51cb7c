// The rows the admin commands and the admin page show: plain data on the wire, with no imports, so the
// browser page (web/admin) can take these types without any server code.

/** One row of `control authkey list`: everything but the secret (only the key's public prefix `mskey-ID` is shown). */
export interface AdminAuthKey {
  id: string;
  prefix: string;
  user: string | null;
  tags: string[];
  reusable: boolean;
  ephemeral: boolean;
  created: string;
  expires: string | null;
  expired: boolean;
  used: number;
  revoked: boolean;
}

/** One row of `control routes list`: a subnet route, or a node's exit-node state. */
export interface RouteRow {
  nodeId: number;
  node: string;
  kind: 'route' | 'exit';
  /** the prefix; for an exit node "0.0.0.0/0,::/0" */
  prefix: string;
  advertised: boolean;
  approved: boolean;
  /** routes: this node is the prefix's primary router (only then does it carry the prefix) */
  primary: boolean;
  online: boolean;
}
