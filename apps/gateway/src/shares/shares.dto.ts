import { ApiProperty } from '@nestjs/swagger';

export class ShareDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({
    format: 'uuid',
    nullable: true,
    type: String,
    description: 'The shared file; null once it was deleted',
  })
  fileId!: string | null;
  @ApiProperty({
    enum: ['active', 'expired', 'exhausted', 'revoked'],
    description: 'Whether the link opens now (exhausted: maxDownloads reached)',
  })
  state!: string;
  @ApiProperty({ format: 'date-time' }) expiresAt!: string;
  @ApiProperty({ type: 'integer', nullable: true, description: 'null: unlimited' })
  maxDownloads!: number | null;
  @ApiProperty({ type: 'integer', description: 'Completed whole-file downloads' }) downloads!: number;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) lastDownloadAt!: string | null;
  @ApiProperty({ description: 'Whether the link asks for a password' }) hasPassword!: boolean;
  @ApiProperty({ nullable: true, type: String, description: "The owner's own note" }) note!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time', nullable: true, type: String }) revokedAt!: string | null;
}

export class ShareCreatedDto extends ShareDto {
  @ApiProperty({
    example: 'https://tess.example/s/3q2-7wJ…',
    description: 'The link (`/s/<token>`, 256 random bits); shown once, only its SHA-256 is stored',
  })
  url!: string;
}

export class ShareListDto {
  @ApiProperty({ type: [ShareDto] }) items!: ShareDto[];
}

export class SharePageDto {
  @ApiProperty({ type: [ShareDto] }) items!: ShareDto[];
  @ApiProperty({
    nullable: true,
    type: String,
    description: 'Pass as `cursor` for the next page; null on the last',
  })
  nextCursor!: string | null;
}
