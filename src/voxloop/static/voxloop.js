// voxloop page client, over one WebSocket (/ws/live):
// - plays reply audio the moment it arrives: [u32 turn][int16 PCM] messages after a
//   {"type":"reply","turn":N,"sample_rate":R} header, scheduled back to back on Web Audio;
//   a newer turn, {"type":"stop"}, or a click on Stop/Clear/record silences the old reply at once;
// - hands-free: "Start conversation" opens the microphone (echo cancellation on) and streams
//   16 kHz int16 frames; the server answers with live transcripts, states and replies;
// - the record button: while Gradio records, the same capture streams the microphone between
//   {"type":"record","on":true} and "on":false, so the server transcribes it as it comes
//   (live transcript) and starts the turn at stop, before Gradio has uploaded the file;
//   that upload waits for the reply's first sound (see holdUpload).
(() => {
  // Runs in the audio thread: downmix, low-pass (moving average over one input period) and
  // resample from the device rate to 16 kHz; posts 512-sample int16 frames (32 ms).
  const CAPTURE_WORKLET = `class VoxloopCapture extends AudioWorkletProcessor {
    constructor() { super(); this.step = sampleRate / 16000; this.position = 0; this.previous = 0;
      this.width = Math.max(1, Math.round(this.step)); this.window = new Float32Array(this.width);
      this.index = 0; this.sum = 0; this.frame = new Int16Array(512); this.filled = 0; }
    emit(value) { value = Math.max(-1, Math.min(1, value));
      this.frame[this.filled++] = value < 0 ? value * 32768 : value * 32767;
      if (this.filled === 512) { this.port.postMessage(this.frame.buffer, [this.frame.buffer]);
        this.frame = new Int16Array(512); this.filled = 0; } }
    process(inputs) { const channels = inputs[0]; if (!channels || !channels[0]) return true;
      for (let i = 0; i < channels[0].length; i++) {
        let x = 0; for (const channel of channels) x += channel[i]; x /= channels.length;
        this.sum += x - this.window[this.index]; this.window[this.index] = x;
        this.index = (this.index + 1) % this.width; const smooth = this.sum / this.width;
        while (this.position <= 1) { this.emit(this.previous + (smooth - this.previous) * this.position);
          this.position += this.step; }
        this.position -= 1; this.previous = smooth; }
      return true; } }
  registerProcessor("voxloop-capture", VoxloopCapture);`;
  const clientId = (crypto.randomUUID && crypto.randomUUID()) || String(Math.random()).slice(2);
  const state = { ctx: null, gain: null, ws: null, turn: -1, rate: 22050, nextTime: 0,
                  sources: new Set(), firstChunkAt: null };
  const events = [];  // [performance.now(), kind, detail]: read by the browser tests
  const log = (kind, detail) => events.push([performance.now(), kind, detail === undefined ? null : detail]);

  // The record button's upload waits for the reply's first sound, for the server saying no
  // turn starts at this stop ({"type":"record","answering":false}), or UPLOAD_HOLD_MS: Gradio's
  // upload and its handler would otherwise take the two cores just as the reply is being made
  // (~300 ms later to the ear; docs/benchmarks.md). The turn started at stop needs no upload.
  const UPLOAD_HOLD_MS = 1500;
  const GRADIO_UPLOAD = /\/upload(\?|$)/;
  const upload = { held: null, release: null };
  const pageFetch = window.fetch.bind(window);
  window.fetch = (input, init) => {
    const url = typeof input === "string" ? input : (input && input.url) || "";
    if (!GRADIO_UPLOAD.test(url)) return pageFetch(input, init);
    const held = upload.held;
    if (!held) { log("upload_sent"); return pageFetch(input, init); }
    log("upload_held");
    return held.then(() => { log("upload_released"); return pageFetch(input, init); });
  };

  function holdUpload() {
    const held = new Promise((resolve) => { upload.release = resolve; setTimeout(resolve, UPLOAD_HOLD_MS); });
    upload.held = held;
    held.then(() => { if (upload.held === held) upload.held = upload.release = null; });
  }

  const releaseUpload = () => { if (upload.release) upload.release(); };

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
      releaseUpload();
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
    } else if (message.type === "record" && message.answering === false) {
      releaseUpload();  // the page's handler answers the upload
    } else if (message.type === "stop" && message.turn === state.turn) {
      state.turn = -1;
      silence("server stop");
    } else if (message.type === "partial") {
      show("#live_transcript", message.text);
      log("partial", message.text);
    } else if (message.type === "state") {
      show("#live_state", message.value + (message.latency_ms ? ` (answered in ${message.latency_ms} ms)` : ""));
      log("state", message.value);
    } else if (message.type === "alert") {  // a timer or reminder went off; its audio follows
      show("#live_state", "⏰ " + message.text);
      log("alert", message.text);
    } else if (message.type === "error") {
      show("#live_state", "error: " + message.message);
    }
  }

  function show(selector, text) {
    const element = document.querySelector(selector);
    if (element) element.textContent = text;
  }

  const valueOf = (selector) => { const el = document.querySelector(selector); return el ? el.value : ""; };

  // The microphone as 16 kHz int16 frames, each sent over the socket as it comes.
  async function openMicrophone() {
    const ctx = audioContext();  // inside the click: browsers allow audio only after a gesture
    const microphone = await navigator.mediaDevices.getUserMedia({ audio: {
      echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 } });
    if (!state.workletLoaded) {
      const url = URL.createObjectURL(new Blob([CAPTURE_WORKLET], { type: "text/javascript" }));
      await ctx.audioWorklet.addModule(url);
      state.workletLoaded = true;
    }
    const capture = new AudioWorkletNode(ctx, "voxloop-capture");
    ctx.createMediaStreamSource(microphone).connect(capture);
    capture.port.onmessage = (event) => {
      if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(event.data);
    };
    return { microphone, capture };
  }

  function closeMicrophone(opened) {
    if (!opened) return;
    opened.capture.port.onmessage = null;  // frames still on their way belong to no one now
    opened.microphone.getTracks().forEach((track) => track.stop());
    opened.capture.disconnect();
  }

  const socketOpen = () => state.ws && state.ws.readyState === WebSocket.OPEN;

  // The person's choices in the page, for the turns the server starts on its own.
  function choices() {
    return { voice: valueOf("#voice input").split(" ")[0],
      speed: valueOf("#speed input[type=number]"), system_prompt: valueOf("#system_prompt textarea") };
  }

  async function startConversation() {
    const opened = await openMicrophone();
    state.microphone = opened.microphone;
    state.capture = opened.capture;
    const wake = document.querySelector("#wake input");
    state.ws.send(JSON.stringify({ type: "handsfree", on: true, ...choices(),
      wake: Boolean(wake && wake.checked) }));
    state.talking = true;
    show("#talk", "End conversation");
    show("#live_state", "listening");
    log("handsfree_on");
  }

  function endConversation() {
    if (state.microphone) closeMicrophone({ microphone: state.microphone, capture: state.capture });
    state.microphone = state.capture = null;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify({ type: "handsfree", on: false }));
    }
    state.turn = -1;
    silence("conversation ended");
    state.talking = false;
    show("#talk", "Start conversation");
    show("#live_state", "");
    log("handsfree_off");
  }

  // The record button: its recording streams too (hands-free, when on, has the microphone).
  async function startRecording() {
    if (state.talking || state.recording || !socketOpen()) return;
    const recording = { opened: null };
    state.recording = recording;
    show("#live_transcript", "");
    state.ws.send(JSON.stringify({ type: "record", on: true, ...choices() }));
    log("record_on");
    const opened = await openMicrophone();
    if (state.recording === recording) recording.opened = opened; else closeMicrophone(opened);
  }

  function stopRecording() {
    const recording = state.recording;
    if (!recording) return;
    state.recording = null;
    closeMicrophone(recording.opened);
    if (socketOpen()) {
      holdUpload();
      state.ws.send(JSON.stringify({ type: "record", on: false }));
    }
    log("record_off");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const path = location.pathname.replace(/\/$/, "");
    const ws = new WebSocket(`${scheme}${location.host}${path}/ws/live?client=${clientId}`);
    ws.binaryType = "arraybuffer";
    ws.onmessage = onMessage;
    ws.onopen = () => log("connected");
    ws.onclose = () => {
      log("disconnected");
      if (state.talking) endConversation();
      if (state.recording) stopRecording();
      setTimeout(connect, 1000);
    };
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
    if (target && target.closest("#audio_in button.record-button")) {
      startRecording().catch((err) => { stopRecording(); log("mic_error", err.message); });
    }
    if (target && target.closest("#audio_in button.stop-button")) stopRecording();
    if (target && target.closest("#talk")) {
      if (state.talking) endConversation(); else startConversation().catch((err) => {
        show("#live_state", "microphone unavailable: " + err.message); log("mic_error", err.message); });
    }
  }, true);

  window.voxloop = { clientId, events, state };
  connect();
})();
