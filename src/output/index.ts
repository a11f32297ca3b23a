/** Output's public surface: the record builders (the sinks are the CLI's). */
export { embedRecord, npyFile, npyIndexRecord, classifyRecord, classifyCsvRow, CLASSIFY_CSV_HEADER } from './records.js';
