"""mmrec: record, benchmark and review many MJPEG camera nodes at once.

The path of one frame, by module (the subpackages are the stages, in this order)::

    discover/discovery    finds the node (mDNS, probed hostnames, a scanned subnet),
      ingest/status       and asks its /status who it is and what its clock reads
    ingest/stream         one task per camera: the socket's bytes go to the parser
      wire/http1            the response head, read resumably
      wire/receive          the receive buffer; the JPEG lands in store/payload memory
      wire/parts            the multipart state machine (wire/multipart drives it;
      wire/jpeg             wire/rawjpeg for back-to-back JPEGs on the one marker walker)
      wire/timestamp        the part's X-Timestamp: the device clock at capture
    session/camera        the camera's feed: places the frame and hands it on
                          (session/probes: its /status clock probes)
      timeline/align        device clock -> take timeline (timeline/clock: the model)
    session/recording     the take: session/takecamera hands the frame to the camera's
                          writer
      store/writer          writer threads behind bounded queues
      store/files           the camera's segments and index.csv (store/health: disk faults,
                            store/relay: the folder it writes into, and moving on)
      store/mkv             one O_DIRECT write of the frame into seg-NNNN.mkv
    live/preview          meanwhile, the newest frame of each camera is handed to a
      live/worker           child process (live/channel), decoded there
      picture/decode        (libjpeg-turbo, to YUV) and tiled by live/mosaic into the
      picture/h264          live multiview: preview.mkv and a page (live/server)

After the take, from what is on disk (store/take: the manifest and index; store/reader:
the frames back): timeline/refine places every frame again with the whole take's
evidence; review/proxy renders proxies, a multiview and a contact sheet; export/job
writes MOVs and editors' timelines. sim/ is the camera simulator, bench/ the device
benchmark, console/ the all-day shoot console, commands/ the command line.
"""

__version__ = "0.1.0"
