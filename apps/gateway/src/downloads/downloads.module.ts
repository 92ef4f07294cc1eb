import { Module } from '@nestjs/common';
import { DownloadResponder } from './download.responder.js';
import { FileReader } from './file-reader.service.js';

/** The read pipeline: verified reads of stored files and the download protocol built on them. */
@Module({ providers: [FileReader, DownloadResponder], exports: [FileReader, DownloadResponder] })
export class DownloadsModule {}
