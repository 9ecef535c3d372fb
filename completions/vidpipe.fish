# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vidpipe_global_optspecs
    string join \n progress= v/verbose q/quiet config= endpoint-url= retry-for= h/help V/version
end

function __fish_vidpipe_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vidpipe_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vidpipe_using_subcommand
    set -l cmd (__fish_vidpipe_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vidpipe -n "__fish_vidpipe_needs_command" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_needs_command" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_needs_command" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_needs_command" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_needs_command" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "transcode-hls" -d 'Transcode videos into adaptive-bitrate HLS (master, media and I-frame playlists, thumbnail), resuming after a crash'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "upload-chunked" -d 'Upload files to S3 with parallel multipart parts, per-part retries and checksums, resuming an interrupted upload on re-run'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "captions" -d 'Segment transcripts (SRT, WebVTT, JSON; one per language) into WebVTT segments and HLS subtitle playlists, once (VOD) or live while the transcripts grow (--follow)'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "commentary" -d 'Speak commentary over a video: fixed-interval MP4 chunks built in parallel (voice mixed over the ducked original audio), then joined'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "probe" -d 'Print facts about a media file or URL as JSON'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "prune" -d 'Delete stale segments, chunks, state and incomplete uploads without breaking a stream a player is reading (for cron)'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "run" -d 'Run a whole publishing pipeline per input (transcode-hls, captions, commentary, delete the source) from one manifest: each remote input read once, re-runs skip what is complete'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "transcribe" -d 'Speech to timed transcripts (SRT, WebVTT, JSON) ready for `captions`: chunks cut at silences, recognised in parallel, offline (PocketSphinx through libavfilter) or by any engine as a command'
complete -c vidpipe -n "__fish_vidpipe_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -s o -l output -d 'Output directory or s3://bucket/prefix; each input gets DEST/<input-stem>/' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l ladder -d 'Ladder rungs as SHORT_SIDE:BITRATE pairs [default: 1080:5000k,720:2800k,480:1400k,360:800k,240:400k]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l audio-bitrate -d 'AAC bitrate of the audio rendition [default: 128k]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l audio-language -d 'BCP-47 language of the audio rendition, e.g. en or pt-BR [default: the source\'s tag, else und]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l segment-duration -d 'Target segment duration, e.g. 6 or 4s [default: 6s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l segment-format -d 'Segment container [default: ts]' -r -f -a "ts\t'MPEG-2 transport stream segments (.ts)'
fmp4\t'Fragmented MP4 segments (init.mp4 + .m4s)'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l preset -d 'x264 preset, ultrafast to veryslow [default: veryfast]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l max-fps -d 'Highest output frame rate; faster sources are converted [default: 60]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l scaling -d 'How renditions are scaled [default: cascade]' -r -f -a "cascade\t'Renditions scaled from a larger rendition where that keeps the quality of camera footage (less CPU)'
direct\t'Every rendition scaled from the source: for sharp synthetic pictures (screen recordings, slides), where a cascade can cost a small rendition about 0.25 dB PSNR'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l threads -d 'CPU threads to use in total [default: all cores]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l shard -d 'Process only shard K of N of the inputs, chosen by a stable hash of each input\'s name (for CI matrices and job arrays), e.g. 2/4; auto takes K and N from a Slurm, Kubernetes or AWS Batch array task' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l state-dir -d 'Keep the checkpoints of an s3:// output in this local directory instead of beside the output in the bucket (for public buckets); then only this machine can resume them' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -l delete-source -d 'Delete each s3:// input object after its output is complete (never on failure; local files are never deleted)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcode-hls" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l presign -d 'After each upload, print a presigned GET URL valid this long (e.g. 1h; 7d is the most S3 allows)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l part-size -d 'Bytes per part, 5MiB to 5GiB; files up to this size go up in one PUT; grown automatically to stay within 10,000 parts [default: 8MiB]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l concurrency -d 'Parts in flight at once, across all files [default: 8]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l attempts -d 'Attempts per part before the file fails [default: 6]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l content-type -d 'Content-Type of every uploaded file [default: by each file\'s extension, application/octet-stream when unknown]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l shard -d 'Upload only shard K of N of the files, chosen by a stable hash of each file\'s path below its source argument (for CI matrices and job arrays), e.g. 2/4; auto takes K and N from a Slurm, Kubernetes or AWS Batch array task' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l status -d 'Show each upload\'s journal and the parts the server holds, instead of uploading'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l abort -d 'Abort every unfinished upload the server holds for each file\'s key (ListMultipartUploads), with or without a local journal or the file itself, and forget any journal'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l list-incomplete -d 'List the unfinished multipart uploads under DEST (the only path given) with their age'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -l json -d 'JSON output for --status and --list-incomplete'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand upload-chunked" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -s o -l output -d 'Output directory or s3://bucket/prefix (captions.m3u8, captions-N.vtt, captions-<lang>.m3u8, captions-<lang>-N.vtt)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l segment-duration -d 'Segment duration, e.g. 4 or 6s [default: 4s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l mpegts-offset -d 'MPEG-TS time (90 kHz) of cue time 0, written in every segment\'s X-TIMESTAMP-MAP [default: where transcode-hls output starts: 900000 for MPEG-TS, 0 when --master\'s renditions are fMP4]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l base-url -d 'Make segment URIs absolute under this URL (default: relative)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l duration -d 'Media duration to cover when the video runs on after the last cue, e.g. 95.5 or 1h2m' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l master -d 'Add the languages as a SUBTITLES group to this master playlist (local file or s3://bucket/key); running again changes nothing' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l interval -d 'Live: time between checks of the transcripts [default: 5s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l window -d 'Live: segments kept in each playlist [default: 100]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l state-dir -d 'Live: keep the state of an s3:// output in this local directory instead of beside the output in the bucket (for public buckets)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l follow -d 'Live: watch the transcripts as they grow and publish new segments every --interval, in sliding-window playlists'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -l finish -d 'Live: the stream is over; publish the rest, end the playlists (ENDLIST) and exit. Without it a run ends when every transcript has an end marker FILE.end beside it'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand captions" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -s o -l output -d 'Output directory or s3://bucket/prefix: chunks/chunk_NNNN.mp4, commentary.mp4 and, with --hls, hls/' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l script -d 'YAML script: a list of lines, each with `at` (seconds or hh:mm:ss.mmm) and `text` to speak or `audio` (a pre-recorded file)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l writer -d 'With --auto: a shell command that reads an interval\'s events as JSON on stdin and prints the line to speak (e.g. an LLM CLI)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l lines-per-interval -d 'With --auto: most lines per interval [default: 2]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l interval -d 'Chunk length, e.g. 30 or 30s (whole frames) [default: 30s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l voice-delay -d 'Time from a line\'s `at` to the start of its voice [default: 1s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l duck -d 'Level of the original audio while a voice plays: a gain from 0 to 1 (0.2 = 20%, about -14 dB), or `auto` for side-chain compression keyed by the voice [default: 0.2]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l tts-cmd -d 'TTS program as a template with {text} and {out} (the WAV file to write), e.g. \'piper -m voice.onnx -f {out} -- {text}\' [default: espeak-ng]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l voice -d 'espeak-ng voice, e.g. en-us (default TTS only)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l tts-concurrency -d 'TTS programs running at once [default: 5]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l tts-timeout -d 'Time limit for one line\'s TTS (and one --writer run) [default: 30s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l preset -d 'x264 preset, the same for every chunk [default: veryfast]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l video-bitrate -d 'H.264 bitrate [default: 2000k]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l audio-bitrate -d 'AAC bitrate [default: 128k]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l threads -d 'CPU threads to use in total [default: all cores]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l state-dir -d 'Keep the state of an s3:// output (and each chunk\'s mixed audio until the final file exists) in this local directory instead of beside the output in the bucket (for public buckets); then only this machine can resume it' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l auto -d 'Make the lines from events detected in the video: scene cuts, loud moments and silence'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l events-only -d 'With --auto: print the detected events as JSON and stop'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -l hls -d 'Also keep an HLS EVENT playlist (hls/commentary.m3u8, MPEG-TS copies of the chunks) that grows as chunks are made'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand commentary" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand probe" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l older-than -d 'Age beyond which a file may go, e.g. 10m or 1d; a job or live playlist that changed within it is in progress' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l lifecycle -d 'Install a bucket lifecycle rule for each s3:// DEST: abort incomplete multipart uploads after DAYS (with --expire, also delete objects after DAYS)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l state-dir -d 'Also look in this local directory for the state of jobs writing to an s3:// DEST (the --state-dir those jobs were given), so their work in progress is recognised and kept' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l dry-run -d 'Print what would be deleted and why; delete nothing'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l expire -d 'Also delete whole published outputs older than --older-than, master playlist first (and, under a prefix of plain files, the files older than it)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l abort-uploads -d 'Abort incomplete multipart uploads under each s3:// DEST started longer ago than --older-than, and forget their journals'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -l allow-root -d 'Let --expire work on a filesystem root, the home directory or a whole bucket'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand prune" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l shard -d 'Take only this machine\'s share of the inputs: a stable hash of each input\'s name (for CI matrices and job arrays), e.g. 2/4; auto takes K and N from a Slurm, Kubernetes or AWS Batch array task' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l jobs -d 'Inputs processed at once, the CPU threads divided between them [default: 1]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l report -d 'Also write the final summary (per input: steps, outcomes, output, seconds) as JSON to this file, e.g. for a CI artifact' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -l dry-run -d 'List per input the steps that would run, resume, or be skipped, and touch nothing'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand run" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -s o -l output -d 'Output directory or s3://bucket/prefix (DEST/<stem>.<lang>.srt), or with one input a file name with an extension (.srt, .vtt, .json)' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l format -d 'Transcript format [default: srt, or DEST\'s extension]' -r -f -a "srt\t'SubRip (.srt)'
vtt\t'WebVTT (.vtt)'
json\t'JSON, [{"start": secs, "end": secs, "text": "..."}] (.json)'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l language -d 'BCP-47 language of the speech, in the file names [default: en]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l engine -d 'Recogniser: libavfilter\'s asr (PocketSphinx, offline) or a command (--asr-cmd) [default: libav]' -r -f -a "libav\t'libavfilter\'s asr filter (PocketSphinx), in process, offline'
command\t'The program given with --asr-cmd, once per chunk'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l model-dir -d 'PocketSphinx model directory: an acoustic model directory, a .lm.bin language model and a .dict dictionary [default: /usr/share/pocketsphinx/model/en-us]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l asr-cmd -d 'With --engine command: the program as a template run without a shell, with {in} (the chunk as 16 kHz mono WAV, chunk-NNNN.wav by its number) and {out} (where to write SRT, WebVTT or JSON, told by the extension after {out} or a format named in the template), e.g. \'whisper-cli -m ggml-base.en.bin -f {in} -osrt -of {out}\'' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l asr-timeout -d 'With --engine command: time limit for one chunk [default: 10m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l chunk -d 'Longest chunk; chunks end in pauses [default: 30s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l jobs -d 'Chunks recognised at once [default: the number of cores]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l idle -d 'Live: a file that has not grown for this long has ended [default: 10s]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l progress -d 'How to show progress: bars on a terminal (auto), bars, one JSON object per line on stdout (json), or nothing' -r -f -a "auto\t'Bars when stderr is a terminal, nothing otherwise'
bars\t'Progress bars on stderr'
json\t'NDJSON events on stdout'
none\t'No progress output'"
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l config -d 'YAML config file (default: ./vidpipe.yaml when it exists)' -r -F
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l endpoint-url -d 'Endpoint of an S3-compatible server (Garage, MinIO, Ceph, R2) for s3:// destinations; AWS_ENDPOINT_URL works too. Credentials and region come from the standard AWS variables and profiles' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l retry-for -d 'How long an S3 request that fails for a passing reason (connection refused or reset, 5xx, SlowDown) is retried before the input fails, e.g. 30s or 5m [default: 2m]' -r
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -l follow -d 'Live: the one INPUT is still growing (a file being written, an HLS live playlist); append cues to a local transcript as each chunk is complete, for `captions --follow`, and leave FILE.end beside it when the input ends'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -s v -l verbose -d 'More log output on stderr (-v debug, -vv trace)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -s q -l quiet -d 'Less log output on stderr (-q warnings only, -qq errors only)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand transcribe" -s V -l version -d 'Print version'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "transcode-hls" -d 'Transcode videos into adaptive-bitrate HLS (master, media and I-frame playlists, thumbnail), resuming after a crash'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "upload-chunked" -d 'Upload files to S3 with parallel multipart parts, per-part retries and checksums, resuming an interrupted upload on re-run'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "captions" -d 'Segment transcripts (SRT, WebVTT, JSON; one per language) into WebVTT segments and HLS subtitle playlists, once (VOD) or live while the transcripts grow (--follow)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "commentary" -d 'Speak commentary over a video: fixed-interval MP4 chunks built in parallel (voice mixed over the ducked original audio), then joined'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "probe" -d 'Print facts about a media file or URL as JSON'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "prune" -d 'Delete stale segments, chunks, state and incomplete uploads without breaking a stream a player is reading (for cron)'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "run" -d 'Run a whole publishing pipeline per input (transcode-hls, captions, commentary, delete the source) from one manifest: each remote input read once, re-runs skip what is complete'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "transcribe" -d 'Speech to timed transcripts (SRT, WebVTT, JSON) ready for `captions`: chunks cut at silences, recognised in parallel, offline (PocketSphinx through libavfilter) or by any engine as a command'
complete -c vidpipe -n "__fish_vidpipe_using_subcommand help; and not __fish_seen_subcommand_from transcode-hls upload-chunked captions commentary probe prune run transcribe help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
