"""How long a request for the media playlist waits for the next segment, when the newest listed is old.

Why (issue 19). A live HLS player puts its live edge at the end of the newest segment of the media playlist
as of the moment it reads it, and then plays at 1x from that edge less its delay for the whole session. Read in
Shaka 4.9.2, 4.15, 4.16 and 5.2: PresentationTimeline.notifySegments sets `presentationStartTime_ = now -
maxSegmentEndTime_ - maxSegmentDuration_`, so getLiveEdge_() is the newest segment's end plus the time since it
was read; the playhead starts at that edge less the delay (HlsParser.changePresentationTimelineToLive_) and
never catches up. So the newest segment's age when a receiver first reads the playlist is added to every page
switch, every interrupt and every encoder restart of its session. A receiver loads at any moment: with 0.5 s
segments that age is anywhere in 0-0.5 s, 0.25 s on average. (Measured, bench/README.md "A fresh edge": the
switch at the glass 0.04-0.2 s faster with this hold; the loads still differ by up to 0.3 s for another reason.)

So a request that finds the newest segment older than FRESH_SHARE of a segment waits for the next listing: at
most the rest of that segment plus SLACK (a listing comes one frame, 0.1 s at 10 fps, after the segment's last
frame; later under load); then it is served as it is. For an age spread evenly over a segment of S seconds and
held above a = FRESH_SHARE x S, a player starts a^2 / 2S old on average instead of S / 2, and its first read
waits (S - a)^2 / 2S: with hls-fast (S 0.5 s, a 0.2 s), 0.04 s instead of 0.25 s old, for 0.09 s more at the
first read (at most 0.3 s + SLACK). A smaller share would gain at most 0.04 s more and cost more at every cold
start (0.16 s on average at a 0.1 s share; a cold start at the glass is 1.6-1.8 s against a 2.0 s target).

Refreshes are plain requests too (castd declares no CAN-BLOCK-RELOAD): a held one comes back the moment the next
segment is listed, and Shaka takes its average update time off its next refresh delay (HlsParser.onUpdate_:
`max(0, delay - averageUpdateDuration_.getEstimate())`), so its refreshes settle just before a listing.
A playlist that has not moved for longer than a segment plus SLACK (an encoder restarting, a session ending)
is served at once: nothing is coming soon, and a player waiting on it learns nothing new by waiting.
"""

from __future__ import annotations

import msgspec

FRESH_SHARE = 0.4  # of a segment: an older newest segment makes a request wait for the next one
SLACK = 0.15  # seconds a listing may come after its segment's expected end (one frame + an encoder late)


class FreshEdge(msgspec.Struct, frozen=True):
    """The decision for one stream format (its segment length); no clock, no I/O."""

    segment_seconds: float

    def hold(self, age: float) -> float:
        """Seconds a request that finds the newest segment listed `age` seconds ago may wait for the next
        listing; 0: serve it now (fresh enough, or the playlist has stopped moving, or a clock went back)."""
        if age <= FRESH_SHARE * self.segment_seconds or age >= self.segment_seconds + SLACK:
            return 0.0
        return self.segment_seconds + SLACK - age
