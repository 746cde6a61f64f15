/*
 * wake_tree.pml -- SPIN model of the fan-out wake protocol ("wake tree",
 * src/wake_tree.hpp and the host_sleep() exit of src/doorbell.hpp): a call
 * to many CPUs claims their sleeping hosts and wakes only the roots of the
 * claimed subtrees; each woken host wakes its claimed children (its relay
 * duty). It builds on doorbell.pml's sleep/wake handshake. See
 * model/README.md.
 *
 *   fan-out caller                          host (its idle loop, one CPU)
 *   --------------                          ----------------------------
 *   1. push onto every target's queue;      host_state = sleeping
 *      remember those found empty           seq_cst fence
 *   2. seq_cst fence (one)                  if its queue is empty:
 *      children before parents, for each      futex_wait(host_state, sleeping)
 *      remembered target:                   old = exchange(host_state, polling)
 *        if host_state == sleeping:         if old != sleeping:      (relay)
 *          CAS sleeping -> owed (claimed)     for each tree child c:
 *   3. for each claimed target whose            if c.state == owed: DELIVER(c)
 *      tree parent it did not claim:        take its queue, run the calls;
 *        DELIVER(target)                    loop (it may sleep again)
 *      return (no wait)
 *
 *   DELIVER(t): CAS t.state owed -> polling; if it won: futex_wake(t)
 *
 *   plain sender (one target): push; if the queue was empty: seq_cst fence;
 *     if host_state == sleeping: CAS sleeping -> polling; if it won:
 *     futex_wake. (It sees owed: a wake is owed by someone else, nothing.)
 *
 * The tree is a fixed shape over CPU ids, parent id < child id: by default
 * a heap (R = 0 with children A = 1 and B = 2), with -DCHAIN a chain
 * R -> A -> B. "Children before parents" is then descending id order.
 *
 * Properties, checked when the system has come to rest (the `quiescence`
 * process's `timeout`: no other statement of any process can execute, that
 * is every caller and sender has finished and every host is blocked in
 * futex_wait, which is a valid end state for a host):
 *  (1) no lost wake-up: no host is asleep in futex_wait with calls queued;
 *      and none is asleep in the `owed` state (a claim nobody delivered:
 *      the next plain sender would see `owed` and not wake it either);
 *  (2) every pushed call ran exactly once: every queue is empty and each
 *      host ran as many calls as were pushed to it;
 *  (3) every futex_wake is made by the winner of a CAS on that host's word
 *      (sleeping -> polling, or owed -> polling), and every winner makes its
 *      futex_wake (asserted at each wake, and at rest: none outstanding).
 *
 * Switches (spin -a -D...):
 *   CHAIN            tree shape R -> A -> B (depth 3) instead of R(A, B).
 *   NCALLERS=n       concurrent fan-out callers (default 1), each making
 *                    CALLS=n calls (default 1) to all NH=3 CPUs.
 *   SINGLE_SENDER    add a plain sender making SENDS=n calls (default 1) to A.
 *   TIMEOUTS=n       futex_wait may also return with nobody waking it (its
 *                    timeout, a signal: EINTR), at most n times per host
 *                    (default 0); bounded so that the system comes to rest.
 *   ASLEEP=mask      the hosts of these CPUs (bit i: CPU i) start asleep in
 *                    futex_wait (default 0: every host starts awake, about
 *                    to sleep). Only a reduction: a host that starts awake
 *                    can fall asleep before anything else moves, and every
 *                    host goes to sleep again after its calls; it drops the
 *                    races of the hosts' first sleep (two callers with all
 *                    hosts awake are ~400M states).
 *   PARENTS_FIRST    phase 2 claims parents before their children. SPIN
 *                    must find a claimed child nobody delivers.
 *   STORE_NOT_EXCHANGE  the host's exit is a plain store of polling, and it
 *                    relays only when it slept and a futex_wake woke it.
 *                    SPIN must find claimed children nobody delivers.
 *   NO_RELAY         hosts never relay. SPIN must find a lost wake-up.
 *   NO_CALLER_FENCE  drop the caller's phase-2 fence: its load of a
 *                    target's host_state may be performed before its push
 *                    to that target is visible. SPIN must find a lost
 *                    wake-up.
 *   NO_OWED_CHECK    leave out the check "no host asleep owed", so that a
 *                    failing variant must show the hang itself: a host
 *                    asleep for good with calls queued.
 *   NO_HOST_FENCE    drop host_sleep()'s fence: the host's load of its
 *                    queue may be performed before its store of sleeping is
 *                    visible. SPIN must find a lost wake-up.
 *
 * LOADS: the code tests host_state with a plain load before each CAS (a
 * failed CAS would still take the cache line). The model folds each such
 * load into its CAS: the load has no effect of its own, "the load saw
 * another value, skip" is the CAS failing at the load's moment, and "the
 * load saw the value, the CAS ran later" is the CAS at its own moment, so
 * the folded model has the same outcomes with fewer interleavings. Not so
 * with NO_CALLER_FENCE, whose early load is a stale value: it is kept.
 *
 * SPIN is sequentially consistent: every store is visible to every process
 * at once and each process runs its statements in order. The fenced model is
 * the protocol as its seq_cst fences and acquire/release pairs make it
 * behave (in particular the relay argument: the host's exit exchange reads
 * the caller's claim of it, which comes after the caller's claims of its
 * children; in SC that order is automatic, in C++ it is the release CAS /
 * acquire exchange pairing argued in src/wake_tree.hpp). A dropped fence is
 * modelled by the one reordering it forbids, chosen nondeterministically,
 * as in doorbell.pml. Granularity: one statement per memory access or system
 * call; `atomic { }` only around one atomic instruction (push, take, CAS,
 * exchange), one system call (futex_wait's compare-and-queue, futex_wake)
 * or ghost bookkeeping.
 */

#define NH 3                             /* CPUs: 0 = R, 1 = A, 2 = B */
#define NONE 255

#ifdef CHAIN
#define PARENT(c) ((c) == 0 -> NONE : (c) - 1)              /* R -> A -> B */
#define FIRST_CHILD(p) ((p) + 1)
#define LAST_CHILD(p) ((p) + 1 < NH -> (p) + 1 : NH - 1)  /* < first: none */
#else
#define PARENT(c) ((c) == 0 -> NONE : ((c) - 1) / 2)        /* heap: R(A, B) */
#define FIRST_CHILD(p) (2 * (p) + 1)
#define LAST_CHILD(p) (2 * (p) + 2 < NH -> 2 * (p) + 2 : NH - 1)
#endif

/* The caller also delivers the claimed CPUs of the first CALLER_DELIVERS
   ranks itself, whether or not it claimed their parents (the library: 4,
   kCallerDeliveries in fan_out_doorbell.hpp; 1 is the bare tree, where only
   the root, rank 0, has no parent). A claimed child its parent's relay also
   tries: the CAS owed -> polling has one winner. */
#ifndef CALLER_DELIVERS
#define CALLER_DELIVERS 1
#endif
#define CALLER_DELIVERS_IT(t) ((t) < CALLER_DELIVERS || \
                               !(PARENT(t) != NONE && (claimed & BIT(PARENT(t)))))

#ifndef NCALLERS
#define NCALLERS 1
#endif
#ifndef CALLS
#define CALLS 1
#endif
#ifndef SENDS
#define SENDS 1
#endif
#ifndef TIMEOUTS
#define TIMEOUTS 0
#endif
#ifndef ASLEEP
#define ASLEEP 0
#endif
#ifdef SINGLE_SENDER
#define NSENDERS 1
#else
#define NSENDERS 0
#endif
#define SENDER_TARGET 1                  /* the plain sender's CPU: A */

#define POLLING  1                       /* kHostPolling: awake */
#define SLEEPING 2                       /* kHostSleeping: a sender must wake it */
#define OWED     3                       /* kHostOwed: claimed by a fan-out,
                                            some deliverer owes it one wake */

#define BIT(i) (1 << (i))

/* ---- shared state ------------------------------------------------------ */

byte state[NH];         /* host_state of each CPU (the futex word) */
byte queued[NH];        /* calls in each CPU's queue (its head pointer is
                           non-null iff queued != 0) */
bit  asleep[NH];        /* the host is on its futex's wait queue */

/* ---- ghost state for the properties ------------------------------------ */

byte pushed[NH];        /* calls pushed to each CPU */
byte ran[NH];           /* calls each host has run */
byte wakes_owed[NH];    /* CAS winners (-> polling) yet to make their futex_wake */
byte finished = 0;      /* callers and senders that have returned */

/* futex_wake(&state[t], 1): wakes the host if, and only if, it is on the
   wait queue at this moment; otherwise it does nothing. Made only by the
   winner of a CAS to polling (`won`), which owes exactly this one. */
#define FUTEX_WAKE(t)                                                    \
  atomic {                                                               \
    assert(won && wakes_owed[t] > 0);                                    \
    asleep[t] = 0;                                                       \
    wakes_owed[t]--;                                                     \
    won = 0                                                              \
  }

/* DELIVER(t): CAS owed -> polling; only its winner makes the system call. */
#define DELIVER(t)                                                       \
  atomic {                                                               \
    if                                                                   \
    :: state[t] == OWED -> state[t] = POLLING; won = 1; wakes_owed[t]++  \
    :: else                                                              \
    fi                                                                   \
  };                                                                     \
  if                                                                     \
  :: won -> FUTEX_WAKE(t)                                                \
  :: else                                                                \
  fi

/* ---- the hosts ----------------------------------------------------------- */

proctype host(byte me) {
  byte old;
  byte c;
  bool work;
  bool slept;            /* futex_wait queued it (did not return at once) */
  bool woken;            /* ... and a futex_wake ended the wait */
  bool won;
  byte budget = TIMEOUTS;

  if
  :: ASLEEP & BIT(me) ->
    slept = true;                        /* init put it in futex_wait */
    goto in_wait
  :: else
  fi;
  do
  :: true ->
    /* host_sleep(): announce, fence, re-check, sleep */
#ifndef NO_HOST_FENCE
    state[me] = SLEEPING;
    /* store_load_fence() */
    work = (queued[me] != 0);
#else
    if
    :: state[me] = SLEEPING;
       work = (queued[me] != 0)
    :: work = (queued[me] != 0);         /* the load is performed first ... */
       state[me] = SLEEPING              /* ... the store is seen later */
    fi;
#endif
    if
    :: !work ->
      /* futex_wait(&state, SLEEPING): the kernel compares the word and
         queues the waiter atomically; if the word differs it returns at
         once. Then the thread sleeps until a futex_wake dequeues it. */
      atomic {
        if
        :: state[me] == SLEEPING -> asleep[me] = 1; slept = true
        :: else
        fi
      };
in_wait:
      if
      :: slept ->
end_wait:                                /* a host idle for good: valid end */
        if
        :: asleep[me] == 0 -> woken = true
        :: atomic { budget > 0 && asleep[me] == 1 ->  /* timeout, EINTR */
                    asleep[me] = 0; budget-- }
        fi
      :: else
      fi
    :: else                              /* work queued: do not sleep */
    fi;

    /* every exit: take the word back; anything but sleeping means a sender
       or a fan-out took it (claimed: owed; woken or delivered: polling) */
#ifndef STORE_NOT_EXCHANGE
    atomic { old = state[me]; state[me] = POLLING };
#else
    state[me] = POLLING;                 /* the claim, if any, is lost ... */
    old = (woken -> POLLING : SLEEPING); /* ... relay only if a wake came */
#endif

    /* the relay duty: deliver the claimed children */
#ifndef NO_RELAY
    if
    :: old != SLEEPING ->
      c = FIRST_CHILD(me);
      do
      :: c > LAST_CHILD(me) -> break
      :: else ->
        DELIVER(c);                      /* if c.state == owed: DELIVER(c) */
        c++
      od
    :: else
    fi;
#endif

    /* take its queue (a peek of the head, then the exchange), run the calls */
    if
    :: queued[me] == 0
    :: else ->
      atomic { ran[me] = ran[me] + queued[me]; queued[me] = 0 }
    fi;
    atomic { old = 0; c = 0; work = false; slept = false; woken = false }
  od
}

/* ---- the fan-out callers ------------------------------------------------ */

proctype caller() {
  byte n = 0;
  byte t;
  byte rem;              /* targets whose push found the queue empty */
  byte claimed;          /* targets whose CAS sleeping -> owed won */
  bool won;
#ifdef NO_CALLER_FENCE
  byte early;            /* targets whose host_state load was performed ... */
  byte early_sleeping;   /* ... before the push was visible, and saw sleeping */
#endif

  do
  :: n == CALLS -> break
  :: else ->
    /* phase 1: push onto every target's queue (one successful CAS each) */
    t = 0;
    do
    :: t == NH -> break
    :: else ->
#ifdef NO_CALLER_FENCE
      if
      :: skip                            /* in order, as with the fence */
      :: /* the load of host_state is performed before the push is seen */
        early = early | BIT(t);
        if
        :: state[t] == SLEEPING -> early_sleeping = early_sleeping | BIT(t)
        :: else
        fi
      fi;
#endif
      atomic {
        if
        :: queued[t] == 0 -> rem = rem | BIT(t)
        :: else                          /* rides on an earlier ring */
        fi;
        queued[t]++;
        pushed[t]++
      };
      t++
    od;

    /* phase 2: one seq_cst fence; claim the sleeping remembered targets,
       children before parents (descending id), or parents first */
#ifndef PARENTS_FIRST
    t = NH;
    do
    :: t == 0 -> break
    :: else ->
      t--;
#else
    t = 0;
    do
    :: t == NH -> break
    :: else ->
#endif
      if
      :: rem & BIT(t) ->
        /* if host_state == sleeping: CAS sleeping -> owed (release). The
           load is folded into the CAS (see LOADS below). */
#ifdef NO_CALLER_FENCE
        if
        :: (early & BIT(t)) && !(early_sleeping & BIT(t))
                                         /* the early load saw no sleeping */
        :: else ->
#endif
          atomic {
            if
            :: state[t] == SLEEPING -> state[t] = OWED; claimed = claimed | BIT(t)
            :: else                      /* awake, woken or claimed by another */
            fi
          }
#ifdef NO_CALLER_FENCE
        fi
#endif
      :: else
      fi;
#ifdef PARENTS_FIRST
      t++
#endif
    od;

    /* phase 3: deliver the claimed targets of the first CALLER_DELIVERS
       ranks and those whose parent this call did not claim; the others are
       their parents' relay duty */
    t = 0;
    do
    :: t == NH -> break
    :: t < NH && (claimed & BIT(t)) && CALLER_DELIVERS_IT(t) ->
      DELIVER(t);
      t++
    :: t < NH && !((claimed & BIT(t)) && CALLER_DELIVERS_IT(t)) ->
      t++
    od;

    /* no wait: return */
#ifdef NO_CALLER_FENCE
    atomic { rem = 0; claimed = 0; t = 0; early = 0; early_sleeping = 0; n++ }
#else
    atomic { rem = 0; claimed = 0; t = 0; n++ }
#endif
  od;
  finished++
}

/* ---- the plain sender: one target ------------------------------------- */

proctype sender(byte t) {
  byte n = 0;
  bool was_empty;
  bool won;

  do
  :: n == SENDS -> break
  :: else ->
    atomic {                             /* push */
      was_empty = (queued[t] == 0);
      queued[t]++;
      pushed[t]++
    };
    if
    :: was_empty ->
      /* store_load_fence(); if host_state == sleeping: CAS sleeping ->
         polling (the load folded into the CAS, see LOADS) */
      atomic {
        if
        :: state[t] == SLEEPING -> state[t] = POLLING; won = 1; wakes_owed[t]++
        :: else                          /* polling, or owed: someone else */
        fi
      };
      if
      :: won -> FUTEX_WAKE(t)
      :: else
      fi
    :: else                              /* rides on an earlier ring */
    fi;
    was_empty = false;
    n++
  od;
  finished++
}

/* ---- the properties, checked when nothing else can move ------------------ */

active proctype quiescence() {
  byte i = 0;

  timeout ->                             /* every process is blocked or done */
  assert(finished == NCALLERS + NSENDERS);
  do
  :: i == NH -> break
  :: else ->
    assert(!(asleep[i] && queued[i] != 0));       /* (1) lost wake-up */
    i++
  od;
  i = 0;
  do
  :: i == NH -> break
  :: else ->
#ifndef NO_OWED_CHECK
    assert(!(asleep[i] && state[i] == OWED));     /* (1) undelivered claim */
#endif
    assert(queued[i] == 0 && ran[i] == pushed[i]);/* (2) each call ran once */
    assert(wakes_owed[i] == 0);                   /* (3) each winner woke */
    i++
  od
}

init {
  byte i;
  atomic {
    i = 0;
    do
    :: i == NH -> break
    :: i < NH && (ASLEEP & BIT(i)) -> state[i] = SLEEPING; asleep[i] = 1; i++
    :: i < NH && !(ASLEEP & BIT(i)) -> state[i] = POLLING; i++
    od;
    i = 0;
    do
    :: i == NH -> break
    :: else -> run host(i); i++
    od;
    i = 0;
    do
    :: i == NCALLERS -> break
    :: else -> run caller(); i++
    od;
#ifdef SINGLE_SENDER
    run sender(SENDER_TARGET);
#endif
    i = 0
  }
}
