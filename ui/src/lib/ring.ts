// The ring tone of an incoming call: two tones, 1 s on, 2 s off, made with Web Audio.
let ctx: AudioContext | null = null;
let timer: ReturnType<typeof setInterval> | null = null;

function burst() {
  if (!ctx) return;
  const gain = ctx.createGain();
  gain.gain.value = 0.15;
  gain.connect(ctx.destination);
  for (const f of [440, 480]) {
    const o = ctx.createOscillator();
    o.frequency.value = f;
    o.connect(gain);
    o.start();
    o.stop(ctx.currentTime + 1);
  }
}

export function startRinging() {
  if (timer) return;
  try {
    ctx = ctx ?? new AudioContext();
    burst();
    timer = setInterval(burst, 3000);
  } catch {
    // No audio output: the notification still shows.
  }
}

export function stopRinging() {
  if (timer) clearInterval(timer);
  timer = null;
}
