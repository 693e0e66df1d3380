// voxloop page client: plays reply audio the moment it arrives.
// The server streams each reply over a WebSocket as [u32 turn][int16 PCM] messages, after a
// {"type":"reply","turn":N,"sample_rate":R} header; they are scheduled back to back on Web Audio.
// A newer turn, {"type":"stop"}, or a click on Stop/Clear/record silences the old reply at once.
(() => {
  const clientId = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2);
  const state = { ctx: null, gain: null, ws: null, turn: -1, rate: 22050, nextTime: 0,
                  sources: new Set(), firstChunkAt: null };
  const events = [];  // [performance.now(), kind, detail]: read by the browser tests
  const log = (kind, detail) => events.push([performance.now(), kind, detail === undefined ? null : detail]);

  function audioContext() {
    if (!state.ctx) {
      state.ctx = new AudioContext();
      state.gain = state.ctx.createGain();
      state.gain.connect(state.ctx.destination);
      if (window.__probe) window.__probe.tapNode(state.gain, "voxloop-playback");
    }
    if (state.ctx.state !== "running") state.ctx.resume();
    return state.ctx;
  }

  function silence(why) {
    for (const source of state.sources) { try { source.stop(); } catch (e) {} }
    state.sources.clear();
    state.nextTime = 0;
    log("silenced", why);
  }

  function play(data) {
    const turn = new DataView(data).getUint32(0, true);
    if (turn !== state.turn) return;  // a chunk of a reply that was stopped or replaced
    const pcm = new Int16Array(data, 4);
    const ctx = audioContext();
    const buffer = ctx.createBuffer(1, pcm.length, state.rate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    const source = ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(state.gain);
    const at = Math.max(state.nextTime, ctx.currentTime + 0.02);
    source.start(at);
    if (state.sources.size === 0 && state.firstChunkAt === null) {
      state.firstChunkAt = performance.now();
      log("first_chunk", turn);
    }
    state.nextTime = at + buffer.duration;
    state.sources.add(source);
    source.onended = () => {
      state.sources.delete(source);
      if (state.sources.size === 0) log("playback_ended", turn);
    };
  }

  function onMessage(event) {
    if (typeof event.data !== "string") return play(event.data);
    const message = JSON.parse(event.data);
    if (message.type === "reply") {
      silence("new reply");
      state.turn = message.turn;
      state.rate = message.sample_rate;
      state.firstChunkAt = null;
      log("reply", { turn: message.turn, sample_rate: message.sample_rate });
    } else if (message.type === "stop" && message.turn === state.turn) {
      state.turn = -1;
      silence("server stop");
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const path = location.pathname.replace(/\/$/, "");
    const ws = new WebSocket(`${scheme}${location.host}${path}/ws/playback?client=${clientId}`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = onMessage;
    ws.onopen = () => log("connected");
    ws.onclose = () => { log("disconnected"); setTimeout(connect, 1000); };
    state.ws = ws;
  }

  // Any click may be the gesture the browser wants before audio can play.
  document.addEventListener("click", (event) => {
    audioContext();
    const target = event.target instanceof Element ? event.target : null;
    if (target && target.closest("#stop, #clear, #audio_in button.record-button")) {
      state.turn = -1;
      silence("click");
    }
  }, true);

  window.voxloop = { clientId, events, state };
  connect();
})();
