"""One timeline for all cameras: each device clock mapped onto the recorder's, and timecode."""
