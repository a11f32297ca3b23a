import { describe, expect, it } from 'vitest';
import { srtText, subtitleTime, webvttText } from '../../src/output/subtitles.js';

const segments = [
  { start: 0, end: 2.25, label: 'day', score: 0.9 },
  { start: 2.25, end: 2.2504, label: 'night', score: 0.5 }, // rounds to nothing: no cue
  { start: 2.2504, end: 3723.5, label: 'night', score: 0.8 },
];

describe('subtitles', () => {
  it('subtitleTime() writes HH:MM:SS and milliseconds', () => {
    expect(subtitleTime(3723.0456, '.')).toBe('01:02:03.046');
    expect(subtitleTime(0, ',')).toBe('00:00:00,000');
  });

  it('webvttText() and srtText() write one cue per segment', () => {
    expect(webvttText(segments)).toBe(
      'WEBVTT\n\n00:00:00.000 --> 00:00:02.250\nday\n\n00:00:02.250 --> 01:02:03.500\nnight\n',
    );
    expect(srtText(segments)).toBe(
      '1\n00:00:00,000 --> 00:00:02,250\nday\n\n2\n00:00:02,250 --> 01:02:03,500\nnight\n',
    );
  });
});
