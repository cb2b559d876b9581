// The video mesh: one RTCPeerConnection per pair of room members (2-4 players, plus a
// receive-only connection from each spectator to each player). Media goes browser to
// browser; the server only relays the offer/answer/ICE messages between two named peers.
//
// Who offers: the newcomer, to every peer already connected (listed in `welcome`). Peers
// already there only answer, so two sides never offer at once. A spectator's offer asks
// to receive only; a player answers with its camera tracks.
//
// Each connection also carries one data channel ("replay", opened by the offerer): the
// laugh replay goes over it browser to browser (replay.js), never through the server.

export class Mesh {
  /**
   * @param {object} o
   * @param {string} o.role        "player" | "spectator" (this page)
   * @param {RTCIceServer[]} o.iceServers  from the server's welcome: STUN, and TURN with
   *                                       this member's short-lived credentials
   * @param {"all"|"relay"} [o.iceTransportPolicy]  "relay": only through TURN
   * @param {MediaStream|null} o.stream    this player's camera, null for spectators
   * @param {(to: string, msg: object) => void} o.send   send a signal via the server
   * @param {(id: string, stream: MediaStream) => void} o.onstream  a peer's video arrived
   * @param {(id: string, state: string) => void} [o.onstate]
   * @param {(id: string, data: string|ArrayBuffer) => void} [o.ondata]  a data channel message
   */
  constructor(o) {
    this.o = o;
    this.pcs = new Map(); // peer id -> {pc, pending: [ice candidates before the remote sdp], channel}
  }

  /** New TURN credentials (the server's `ice`): for the connections made from now on. */
  setIceServers(iceServers) {
    this.o.iceServers = iceServers;
  }

  _pc(id) {
    this.close(id);
    const pc = new RTCPeerConnection({
      iceServers: this.o.iceServers || [],
      iceTransportPolicy: this.o.iceTransportPolicy || "all",
    });
    const entry = { pc, pending: [], channel: null };
    this.pcs.set(id, entry);
    pc.onicecandidate = (ev) => {
      if (ev.candidate) this.o.send(id, { kind: "ice", candidate: ev.candidate.toJSON() });
    };
    pc.ontrack = (ev) => this.o.onstream(id, ev.streams[0] || new MediaStream([ev.track]));
    pc.onconnectionstatechange = () => this.o.onstate?.(id, pc.connectionState);
    pc.ondatachannel = (ev) => this._channel(entry, id, ev.channel);
    return entry;
  }

  _channel(entry, id, channel) {
    channel.binaryType = "arraybuffer";
    channel.onmessage = (ev) => this.o.ondata?.(id, ev.data);
    entry.channel = channel;
  }

  /** Send to every peer whose data channel is open; returns the ids it went to. */
  broadcast(data) {
    const to = [];
    for (const [id, entry] of this.pcs) {
      if (entry.channel?.readyState === "open") {
        entry.channel.send(data);
        to.push(id);
      }
    }
    return to;
  }

  /** Bytes queued on the data channels and not yet sent (to pace a burst). */
  get buffered() {
    let n = 0;
    for (const entry of this.pcs.values()) n += entry.channel?.bufferedAmount ?? 0;
    return n;
  }

  _addLocal(pc) {
    const s = this.o.stream;
    if (s) for (const track of s.getTracks()) pc.addTrack(track, s);
  }

  /** Offer to a peer that was in the room before us. */
  async call(peer) {
    if (this.o.role === "spectator" && peer.role === "spectator") return;
    if (this.o.role === "player" && peer.role === "spectator" && !this.o.stream) return;
    const entry = this._pc(peer.id);
    const { pc } = entry;
    this._channel(entry, peer.id, pc.createDataChannel("replay"));
    if (this.o.role === "player" && this.o.stream) {
      this._addLocal(pc);
    } else {
      pc.addTransceiver("video", { direction: "recvonly" });
      pc.addTransceiver("audio", { direction: "recvonly" });
    }
    await pc.setLocalDescription(await pc.createOffer());
    this.o.send(peer.id, { kind: "offer", sdp: pc.localDescription.sdp });
  }

  /** A relayed signal {from, kind, sdp?, candidate?}. */
  async onsignal(msg) {
    const id = msg.from;
    if (msg.kind === "offer") {
      const entry = this._pc(id); // a new offer from a peer replaces any old call
      const { pc } = entry;
      await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      if (this.o.role === "player") this._addLocal(pc);
      await pc.setLocalDescription(await pc.createAnswer());
      this.o.send(id, { kind: "answer", sdp: pc.localDescription.sdp });
      await this._flush(entry);
    } else if (msg.kind === "answer") {
      const entry = this.pcs.get(id);
      if (!entry) return;
      await entry.pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
      await this._flush(entry);
    } else if (msg.kind === "ice" && msg.candidate) {
      const entry = this.pcs.get(id);
      if (!entry) return;
      if (entry.pc.remoteDescription) await entry.pc.addIceCandidate(msg.candidate).catch(() => {});
      else entry.pending.push(msg.candidate);
    }
  }

  async _flush(entry) {
    for (const c of entry.pending.splice(0)) await entry.pc.addIceCandidate(c).catch(() => {});
  }

  close(id) {
    const entry = this.pcs.get(id);
    if (entry) {
      entry.pc.close();
      this.pcs.delete(id);
    }
  }

  closeAll() {
    for (const id of [...this.pcs.keys()]) this.close(id);
  }
}
