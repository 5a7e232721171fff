"""What should be on screen, decided from the config, the commands and the time: no I/O, no clock.

schedule.py turns [[schedules]] into windows of real time; playlist.py is a cursor through a
playlist's items; programme.py stacks manual starts, schedule windows and interrupts and says
what to show now. The supervisor asks it once per pass and acts on the difference.
"""
