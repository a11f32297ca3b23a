/** Output's public surface: the record builders (the sinks are the CLI's). */
// The checks an output passes before it is opened (in fs.ts, shared with the library's writers).
export { checkOutputDir, OUTPUT_DIRS, replaceableState, saysOwn, writeFileAtomic } from '../fs.js';
export {
  embedRecord,
  npyFile,
  npyIndexRecord,
  classifyRecord,
  classifyCsvRow,
  CLASSIFY_CSV_HEADER,
  segmentCsvRows,
  SEGMENTS_CSV_HEADER,
} from './records.js';
export { srtText, webvttText } from './subtitles.js';
