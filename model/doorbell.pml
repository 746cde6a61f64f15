/*
 * doorbell.pml -- SPIN model of xcall's sleep/wake handshake between the
 * senders that queue work for a CPU and the thread that hosts that CPU
 * (src/doorbell.hpp, src/call_queue.hpp, the idle loop in src/hosting.cpp
 * and src/doorbell.hpp (idle_until); docs/design.md, "Sleeping and waking without a lost
 * wake-up"). See model/README.md.
 *
 *   sender                                 host (idle loop, owned CPU)
 *   ------                                 ----------------------------
 *   push; was the queue empty?             drain: take everything queued
 *   if it was:                             host_state = sleeping
 *     seq_cst fence                        seq_cst fence
 *     if host_state == sleeping:           if the queue is empty:
 *       CAS sleeping -> polling              futex_wait(host_state, sleeping)
 *       if the CAS won: futex_wake         host_state = polling
 *
 * Property: there is no reachable state in which work is queued, the host
 * is asleep in futex_wait, and no sender still owes a ring (a sender owes
 * one from a push that found the queue empty until its ring is over). It is
 * checked in every state by the `invariant` process; SPIN also reports the
 * consequence, a host asleep for good with work queued, as an invalid end
 * state, and the host asserts it drained all the work before it leaves.
 *
 * Switches (spin -a -D...):
 *   NO_HOST_FENCE    drop the fence in host_sleep(): the host's load of the
 *                    queue may be performed before its store of "sleeping"
 *                    is visible (store->load reordering, what the fence
 *                    forbids). SPIN must find a lost wake-up.
 *   NO_SENDER_FENCE  drop the fence in ring_doorbell(): the sender's load of
 *                    host_state may be performed before its push is
 *                    visible. SPIN must find a lost wake-up.
 *   SPURIOUS_WAKE    futex_wait may also return with nobody waking it (a
 *                    signal). A late futex_wake from an earlier round that
 *                    hits a later sleep is in the base model already.
 *   NSENDERS=n       senders (default 3); PUSHES=n pushes each (default 2).
 *
 * SPIN is sequentially consistent: every store is visible to every process
 * at once and each process runs its statements in order. The fenced model is
 * therefore the handshake as the seq_cst fences make it behave; a dropped
 * fence is modelled by the one reordering that fence forbids, chosen
 * nondeterministically (either order may happen), which is exactly what a
 * store buffer between the two accesses allows.
 */

#ifndef NSENDERS
#define NSENDERS 3
#endif
#ifndef PUSHES
#define PUSHES 2
#endif
#define WORK (NSENDERS * PUSHES)         /* items the host must drain */

#define RUNNING  0                       /* kHostRunning (not used here) */
#define POLLING  1                       /* kHostPolling */
#define SLEEPING 2                       /* kHostSleeping */

/* ---- shared state ------------------------------------------------------ */

byte queued = 0;        /* descriptors in the CPU's call_queue (its head
                           pointer is non-null iff queued != 0) */
byte host_state = POLLING;

/* the futex on host_state: the host is on its wait queue */
bit  asleep = 0;

/* ---- ghost state for the property --------------------------------------- */

byte owes = 0;          /* senders between a push that found the queue empty
                           and the end of their ring */
byte drained = 0;       /* items the host has taken */

/* futex_wake(&host_state, 1): wakes the host if, and only if, it is on the
   wait queue at this moment; otherwise it does nothing. */
#define FUTEX_WAKE asleep = 0

/* ---- the host ------------------------------------------------------------ */

active proctype host() {
  byte got;
  bool work;

  do
  :: true ->
    /* drain(): take_all, a peek of the head, then the exchange */
    if
    :: queued == 0
    :: else ->
      atomic { got = queued; queued = 0 };
      drained = drained + got;           /* run_calls: local work */
      got = 0
    fi;
    if
    :: drained == WORK -> break          /* bounded: leave once all the work
                                            is done (the real loop goes on,
                                            and sleeps with nothing to miss) */
    :: else
    fi;

    /* idle_until(): the spin phase only reads the queue and returns when it
       is non-empty, as the re-check below does; it is left out. */

    /* host_sleep(): announce, fence, re-check, sleep */
#ifndef NO_HOST_FENCE
    host_state = SLEEPING;
    /* store_load_fence() */
    work = (queued != 0);
#else
    if
    :: host_state = SLEEPING;
       work = (queued != 0)
    :: work = (queued != 0);             /* the load is performed first ... */
       host_state = SLEEPING             /* ... the store is seen later */
    fi;
#endif
    if
    :: !work ->
      /* futex_wait(&host_state, SLEEPING): the kernel compares the word
         and queues the waiter atomically; if the word differs it returns
         at once. Then the thread sleeps until a futex_wake dequeues it. */
      atomic {
        if
        :: host_state == SLEEPING -> asleep = 1
        :: else
        fi
      };
#ifndef SPURIOUS_WAKE
      asleep == 0
#else
      if
      :: asleep == 0
      :: atomic { asleep == 1 -> asleep = 0 }  /* a spurious return (a
                                                  signal: EINTR) */
      fi
#endif
    :: else
    fi;
    work = false;
    host_state = POLLING                 /* resume_state */
  od;
  assert(queued == 0 && drained == WORK)
}

/* ---- the senders ------------------------------------------------------- */

proctype sender() {
  byte n = 0;
  bool was_empty;
  bool seen;                             /* host_state == SLEEPING was read */

  do
  :: n == PUSHES -> break
  :: else ->
#ifdef NO_SENDER_FENCE
    if
    :: skip                              /* in order, as with the fence */
    :: /* the load of host_state is performed before the push is seen */
      seen = (host_state == SLEEPING);
      /* push(): the successful CAS of the lock-free list */
      atomic {
        was_empty = (queued == 0);
        queued++;
        if
        :: was_empty && seen -> owes++
        :: else                         /* no ring: done already */
        fi
      };
      goto ring
    fi;
#endif
    /* push(): the successful CAS of the lock-free list (a failed CAS
       changes nothing and retries) */
    atomic {
      was_empty = (queued == 0);
      queued++;
      if
      :: was_empty -> owes++
      :: else
      fi
    };
    if
    :: !was_empty -> goto pushed         /* a later push rides on the ring
                                            of the one that found it empty */
    :: else
    fi;
    /* ring_doorbell(): store_load_fence(), then load host_state */
    atomic {
      seen = (host_state == SLEEPING);
      if
      :: !seen -> owes--                 /* polling: it will see the work */
      :: else
      fi
    };
ring:
    if
    :: was_empty && seen ->
      /* wake_host(): CAS sleeping -> polling, futex_wake if it won */
      atomic {
        if
        :: host_state == SLEEPING -> host_state = POLLING
        :: else -> seen = false; owes--  /* someone else woke it */
        fi
      };
      if
      :: seen -> atomic { FUTEX_WAKE; owes-- }
      :: else
      fi
    :: else
    fi;
pushed:
    was_empty = false;
    seen = false;
    n++
  od
}

/* ---- the property, checked in every reachable state ---------------------- */

active proctype invariant() {
  assert(!(queued != 0 && asleep && owes == 0))
}

init {
  byte i = 0;
  atomic {
    do
    :: i == NSENDERS -> break
    :: else -> run sender(); i++
    od
  }
}
