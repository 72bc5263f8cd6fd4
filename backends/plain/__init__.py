"""Plain scripts: the baseline recipe written as each framework's own users write it.

``mlpbench fidelity`` times a backend's warm epoch in the harness against its plain script
(``PLAIN_SCRIPT`` on the backend class), so that "shipped" can be checked against the idiom it
claims to follow, in both directions: a harness neither cheaper nor dearer than users' code.
"""
