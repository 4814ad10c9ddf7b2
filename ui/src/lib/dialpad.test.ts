import { describe, expect, it } from "vitest";
import { backspace, clean, dialError, isDialKey, MAX_LEN, press } from "./dialpad";

describe("dial pad", () => {
  it("builds and edits the number", () => {
    expect(press(press("", "1"), "0")).toBe("10");
    expect(backspace("102")).toBe("10");
    expect(backspace("")).toBe("");
    expect(press("1".repeat(MAX_LEN), "2")).toHaveLength(MAX_LEN);
  });
  it("accepts extensions, numbers, feature codes and sip: addresses", () => {
    for (const ok of ["102", "+49 30 1234-56", "*48", "sip:bob@example.com", " 101 "]) {
      expect(dialError(ok), ok).toBeNull();
    }
    expect(clean("+49 (30) 12.34-5")).toBe("+493012345");
    expect(clean("sip:a@b")).toBe("sip:a@b");
  });
  it("says what is wrong with bad input", () => {
    expect(dialError("")).toBe("Enter a number or an extension");
    expect(dialError("bob")).toContain("is not a number");
    expect(dialError("sip:")).toContain("is not a number");
  });
  it("takes DTMF keys from the keyboard", () => {
    expect(["1", "*", "#", "+"].every(isDialKey)).toBe(true);
    expect(isDialKey("a")).toBe(false);
    expect(isDialKey("Enter")).toBe(false);
  });
});
