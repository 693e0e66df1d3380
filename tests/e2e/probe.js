// Injected into the page by the browser tests: records, against performance.now(), the loudness
// (RMS per 512 samples) of what the page plays and of the microphone it opens, so tests can
// tell when sound really starts and stops. Taps the page's Web Audio output (voxloop.js calls
// __probe.tapNode), any <audio> element that starts playing (Gradio's streamed player), and
// the first microphone stream from getUserMedia.
(() => {
  const probe = (window.__probe = { out: [], mic: [], media: [] });
  let monitor = null;
  const keep = [];
  function meter(context, node, into) {
    const processor = context.createScriptProcessor(512, 1, 1);
    processor.onaudioprocess = (event) => {
      const x = event.inputBuffer.getChannelData(0);
      let sum = 0;
      for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
      (into || probe.out).push([performance.now(), Math.sqrt(sum / x.length)]);
    };
    const mute = context.createGain();
    mute.gain.value = 0;
    node.connect(processor);
    processor.connect(mute);
    mute.connect(context.destination);
    keep.push(node, processor, mute);
  }
  probe.tapNode = (node) => meter(node.context, node);
  const devices = navigator.mediaDevices;
  const getUserMedia = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    const stream = await getUserMedia(constraints);
    if (constraints && constraints.audio && !probe.micTapped) {
      probe.micTapped = true;  // the fake microphone file plays once: one tap is enough
      monitor = monitor || new AudioContext();
      meter(monitor, monitor.createMediaStreamSource(stream), probe.mic);
    }
    return stream;
  };
  const tapped = new WeakSet();
  document.addEventListener("playing", (event) => {
    const element = event.target;
    probe.media.push([performance.now(), "playing"]);
    if (!(element instanceof HTMLMediaElement) || tapped.has(element)) return;
    tapped.add(element);
    monitor = monitor || new AudioContext();
    meter(monitor, monitor.createMediaStreamSource(element.captureStream()));
  }, true);
})();
