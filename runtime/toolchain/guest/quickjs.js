// What QuickJS lacks and a guest commonly needs: UTF-8 TextEncoder/TextDecoder (the WIT
// speaks bytes), and a Date/performance that say there is no clock. (With WASI stubbed
// out, QuickJS's own Date.now() would trap with a bare `unreachable`.)

const REPLACEMENT = 0xfffd;

export class TextEncoder {
  get encoding() {
    return "utf-8";
  }

  encode(input = "") {
    const text = String(input);
    const bytes = [];
    for (let i = 0; i < text.length; i++) {
      let code = text.charCodeAt(i);
      if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
        const low = text.charCodeAt(i + 1);
        if (low >= 0xdc00 && low <= 0xdfff) {
          code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
          i++;
        }
      }
      if (code >= 0xd800 && code <= 0xdfff) code = REPLACEMENT; // a lone surrogate
      if (code < 0x80) bytes.push(code);
      else if (code < 0x800) bytes.push(0xc0 | (code >> 6), 0x80 | (code & 63));
      else if (code < 0x10000) bytes.push(0xe0 | (code >> 12), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
      else bytes.push(0xf0 | (code >> 18), 0x80 | ((code >> 12) & 63), 0x80 | ((code >> 6) & 63), 0x80 | (code & 63));
    }
    return new Uint8Array(bytes);
  }
}

export class TextDecoder {
  #fatal;
  #ignoreBOM;

  constructor(label = "utf-8", options = {}) {
    if (!/^(utf-?8|unicode-1-1-utf-8)$/i.test(String(label).trim())) {
      throw new RangeError(`TextDecoder: QuickJS guests decode only utf-8, not ${JSON.stringify(String(label))}.`);
    }
    this.#fatal = Boolean(options.fatal);
    this.#ignoreBOM = Boolean(options.ignoreBOM);
  }

  get encoding() {
    return "utf-8";
  }
  get fatal() {
    return this.#fatal;
  }
  get ignoreBOM() {
    return this.#ignoreBOM;
  }

  decode(input) {
    const view = input === undefined ? new Uint8Array(0) : input;
    const bytes = ArrayBuffer.isView(view) ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength) : new Uint8Array(view);
    const codes = [];
    let text = "";
    const bad = () => {
      if (this.#fatal) throw new TypeError("TextDecoder: the data is not valid utf-8.");
      codes.push(REPLACEMENT);
    };
    let i = bytes.length >= 3 && !this.#ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
    while (i < bytes.length) {
      const lead = bytes[i];
      if (lead < 0x80) {
        codes.push(lead);
        i++;
      } else {
        // WHATWG UTF-8 decode: a bad sequence becomes one U+FFFD for its longest valid prefix.
        let need, code;
        if (lead >= 0xc2 && lead <= 0xdf) ((need = 1), (code = lead & 0x1f));
        else if (lead >= 0xe0 && lead <= 0xef) ((need = 2), (code = lead & 0x0f));
        else if (lead >= 0xf0 && lead <= 0xf4) ((need = 3), (code = lead & 0x07));
        else {
          bad();
          i++;
          continue;
        }
        let lower = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
        let upper = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
        let j = i + 1;
        for (; need > 0; need--, j++) {
          if (j >= bytes.length || bytes[j] < lower || bytes[j] > upper) break;
          code = (code << 6) | (bytes[j] & 0x3f);
          lower = 0x80;
          upper = 0xbf;
        }
        i = j;
        if (need > 0) {
          bad();
          continue;
        }
        if (code >= 0x10000) codes.push(0xd800 + ((code - 0x10000) >> 10), 0xdc00 + ((code - 0x10000) & 0x3ff));
        else codes.push(code);
      }
      if (codes.length >= 8192) text += String.fromCharCode(...codes.splice(0));
    }
    return text + String.fromCharCode(...codes);
  }
}

function noClock(what) {
  throw new Error(
    `${what} needs a clock, which QuickJS guests do not have: use the task event's firedAt (ms since the epoch), or build with --engine starlingmonkey.`,
  );
}

const RealDate = globalThis.Date;

// `new Date(x)` and everything else works; only reading the current time is refused.
export class Date extends RealDate {
  constructor(...args) {
    if (args.length === 0) noClock("new Date()");
    super(...args);
  }
  static now() {
    return noClock("Date.now()");
  }
}

export const performance = { now: () => noClock("performance.now()") };
