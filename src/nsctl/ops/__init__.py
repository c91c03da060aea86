"""Operations that change the system: pin, unpin, enter, run.

Each one either completes or undoes what it did; errors are NsctlError
subclasses whose message names the step that failed.
"""
