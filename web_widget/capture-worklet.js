// AudioWorklet for dictation (dictation.js): the microphone at the context's rate (often 48 kHz) in,
// 16 kHz 16-bit little-endian mono PCM out, posted in 100 ms pieces. Each output sample is the mean of
// the input samples it covers (a box filter: enough low-pass for speech recognition).
class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.target = (options.processorOptions && options.processorOptions.targetRate) || 16000;
    this.step = sampleRate / this.target;  // input samples per output sample
    this.piece = new Int16Array(this.target / 10);
    this.filled = 0;
    this.sum = 0;
    this.count = 0;
    this.position = 0;  // input samples into the current output sample
    this.port.onmessage = (event) => { if (event.data === "flush") this.flush(); };
  }

  push(value) {
    const clipped = Math.max(-1, Math.min(1, value));
    this.piece[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    if (this.filled === this.piece.length) this.flush();
  }

  flush() {
    if (!this.filled) return;
    const out = this.piece.slice(0, this.filled);
    this.port.postMessage(out.buffer, [out.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      this.sum += channel[i];
      this.count += 1;
      this.position += 1;
      if (this.position >= this.step) {
        this.push(this.sum / this.count);
        this.sum = 0;
        this.count = 0;
        this.position -= this.step;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
