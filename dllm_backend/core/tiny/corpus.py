"""The built-in text the tiny tokenizers are trained on: a few KB of English prose and code.

NOTE: fixed text, so a BPE trained on it is the same on every machine; it mixes prose,
numbers, punctuation and Python so that chat prompts and code both split into real merges.
"""
from __future__ import annotations

_PROSE = """\
The quick brown fox jumps over the lazy dog. A diffusion language model writes a whole block
of text at once: it starts from a row of mask tokens and, step by step, replaces the masks it is
most sure about with real words, until no mask is left. An autoregressive model instead writes
one token after another, from left to right, and never goes back to change what it wrote.

Hello! How are you today? I am fine, thank you. What is the weather like where you are?
It is sunny and warm here, with a light wind from the west. Tomorrow it may rain in the morning,
but the afternoon should be clear again. Please bring an umbrella just in case.

Once upon a time there was a small town by the sea. Every morning the fishermen went out in
their boats, and every evening they came back with nets full of fish. The children played on
the beach, built castles of sand and watched the ships sail past on their way to distant ports.
One day a stranger arrived with a map, a lantern and a book of old stories. He asked the people
of the town where the lighthouse had been, for the map showed one on the northern cliff.

Question: What is the capital of France? Answer: The capital of France is Paris.
Question: How many days are there in a week? Answer: There are seven days in a week.
Question: If a train travels 60 miles in 1 hour, how far does it travel in 3 hours?
Answer: It travels 180 miles, because 60 times 3 is 180.
Question: What is 12 plus 30? Answer: 12 plus 30 is 42.
Question: Write a short poem about the moon. Answer: The moon is bright, the night is long,
the stars are quiet, the wind is strong.

You are a helpful assistant. Answer the user's questions clearly and briefly. When you do not
know the answer, say so. Think step by step, check your work, and then give the final answer.
Summarise the text below in two sentences. Translate the following sentence into French.
Explain why the sky is blue. Give three reasons why sleep is important for good health.

Numbers: 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 32 64 100 128 256 512 1024 2048.
Dates: 2024-01-15, 2025-06-30, 12:45, 3.14159, 2.71828, 1e-5, 0.95, 50%, $19.99, #1, @home.
Punctuation: (parentheses) [brackets] {braces} <angles> "quotes" 'single' a/b a\\b a|b a&b a^b ~x.

Science notes. Water boils at one hundred degrees Celsius at sea level and freezes at zero.
Light from the sun takes about eight minutes to reach the earth. Plants use sunlight, water and
carbon dioxide to make sugar and oxygen; this process is called photosynthesis. The human heart
beats around seventy times a minute and pumps blood through arteries, veins and capillaries.
Gravity keeps the planets in orbit around the sun, and the moon in orbit around the earth.

Cooking. To bake simple bread, mix flour, water, yeast and salt, knead the dough for ten minutes,
let it rise for an hour, shape it, let it rise again, and bake it in a hot oven until golden.
For a quick salad, slice tomatoes, cucumbers and onions, add olive oil, lemon juice and pepper.

History. Ancient Egypt built pyramids along the Nile; Rome grew from a village into an empire;
printing presses spread books across Europe; steam engines powered factories and railways;
computers, networks and phones changed how people work, learn, travel and talk to each other.

Travel diary, Monday: we walked through the old market, bought apples, cheese and fresh bread,
visited the museum, and watched the sunset from the bridge. Tuesday: a long hike in the hills,
a picnic near the lake, and a quiet evening reading by the fire. Wednesday: trains, tickets,
luggage, and a late dinner in a small restaurant near the station.

Instructions: open the settings menu, choose the network tab, select your wireless network,
enter the password, and press connect. If the connection fails, restart the router, wait one
minute, and try again. Contact support with the error code if the problem continues.

Letters. Dear Maria, thank you for your kind letter and the beautiful photographs of the garden.
The roses look wonderful this year. We are planning to visit you in September, perhaps during the
second week, if that suits you. Warm regards, Thomas. Dear Sir or Madam, I am writing to apply for
the position of junior engineer advertised on your website. I have attached my curriculum vitae.

Music and art. A symphony orchestra has strings, woodwinds, brass and percussion. Painters mix
pigments on a palette; sculptors carve marble, cast bronze or model clay. Jazz musicians often
improvise melodies over familiar chord progressions, while choirs sing harmonies in four parts.

Sports. The football match ended two goals to one after extra time. In tennis, a player must win
six games to take a set. Marathon runners cover forty-two kilometres; swimmers practise freestyle,
backstroke, breaststroke and butterfly. Cyclists climbed the mountain pass in heavy fog.

Economics. Prices rise when demand grows faster than supply. Banks lend money and charge interest;
governments collect taxes and spend on schools, hospitals, roads and defence. Inflation, wages,
exports, imports, budgets, markets, shares and bonds are measured every quarter.

Animals. Elephants remember; dolphins whistle; owls hunt quietly at night; bees dance to show where
flowers grow; penguins huddle against the cold; giraffes reach leaves high in acacia trees; wolves
howl together; squirrels bury nuts; butterflies migrate thousands of kilometres across continents.

Kitchen inventory: knives, forks, spoons, plates, bowls, cups, glasses, kettle, toaster, blender,
saucepan, frying pan, baking tray, cutting board, grater, whisk, ladle, spatula, colander, jars.
"""

_CODE = '''\
def fibonacci(n: int) -> list[int]:
    """Returns the first n Fibonacci numbers."""
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    numbers = [0, 1]
    while len(numbers) < n:
        numbers.append(numbers[-1] + numbers[-2])
    return numbers[:n]


class Stack:
    def __init__(self) -> None:
        self.items = []

    def push(self, item) -> None:
        self.items.append(item)

    def pop(self):
        if not self.items:
            raise IndexError("pop from an empty stack")
        return self.items.pop()

    def __len__(self) -> int:
        return len(self.items)


import torch
import torch.nn.functional as F

def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    probs = F.softmax(logits.float(), dim=-1)
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=-1)

for i in range(10):
    if i % 2 == 0:
        print(f"{i} is even")
    else:
        print(f"{i} is odd")

config = {"hidden_size": 128, "num_layers": 2, "vocab_size": 2048, "dropout": 0.0}
with open("data.json", "w") as f:
    json.dump(config, f, indent=2)

int main(void) {
    for (int i = 0; i < 10; ++i) {
        printf("%d\\n", i * i);
    }
    return 0;
}

SELECT name, COUNT(*) AS total FROM users WHERE age >= 18 GROUP BY name ORDER BY total DESC;

async def fetch_all(session, urls: list[str]) -> dict[str, int]:
    results: dict[str, int] = {}
    for url in urls:
        async with session.get(url, timeout=30) as response:
            results[url] = response.status
    return results


def binary_search(items: list[int], target: int) -> int:
    low, high = 0, len(items) - 1
    while low <= high:
        mid = (low + high) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            low = mid + 1
        else:
            high = mid - 1
    return -1


@dataclass(frozen=True)
class Point:
    x: float
    y: float

    def distance(self, other: "Point") -> float:
        return math.sqrt((self.x - other.x) ** 2 + (self.y - other.y) ** 2)


function greet(name) {
  const message = `Hello, ${name}!`;
  console.log(message);
  return message.length;
}

const total = [1, 2, 3, 4].map((x) => x * 2).filter((x) => x > 2).reduce((a, b) => a + b, 0);

$ git status && git diff --stat && python -m pytest tests/ -q --maxfail=1
$ pip install --upgrade numpy pandas matplotlib requests
'''

CORPUS: tuple[str, ...] = tuple(
    part for part in (_PROSE + "\n" + _CODE).split("\n\n") if part.strip()
)
